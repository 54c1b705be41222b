"""The interface every metric implements, and the item it scores.

A metric scores a batch of generated images, each with the inputs that produced it. It returns one
dict per item (``{"clip": 0.31}``, or several keys for the toy world's ground truth). A metric whose
weights cannot be loaded raises :class:`imposter.errors.MetricUnavailable` when it is built, so that a
runner can skip it with that message; it is never scored as 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import MetricUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class EvalItem:
    """One generated image and what it is judged against."""

    generated: Image.Image
    source: Image.Image
    driving: Image.Image
    target_prompt: str
    target: Image.Image | None = None  # ground truth, known only in the toy world


class Metric(ABC):
    """Scores generated images; ``keys`` are the names of the numbers it returns."""

    keys: tuple[str, ...] = ()
    needs_target: bool = False  # True: items without ground truth get no score

    @abstractmethod
    def score(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        """Return one ``{key: value}`` dict per item, in order."""

    def score_available(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        """Score the items this metric can judge; the others get an empty dict (absent, not 0)."""
        usable = [i for i, item in enumerate(items) if not self.needs_target or item.target is not None]
        results: list[dict[str, float]] = [{} for _ in items]
        if usable:
            for i, scores in zip(usable, self.score([items[i] for i in usable]), strict=True):
                results[i] = scores
        return results


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers one request, tried once (no retries) within ``timeout`` seconds."""
    from huggingface_hub import constants, get_session

    if constants.is_offline_mode():
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # DNS, connection, TLS, timeout: the client's errors come in many types, all mean "no"
        return False
    return True


def load_metric_model(kind: str, model: str, load: Callable[[bool], T]) -> T:
    """``load(local_files_only)`` for a metric's model, a local folder or a hub id; a failure is the one-line
    MetricUnavailable.

    A hub id is fetched only if the hub answers one request; otherwise it loads from the local cache or fails
    at once, rather than after the hub client's five retries per file (over a minute for each model)."""
    offline = not Path(model).exists() and not hub_reachable()
    try:
        return load(offline)
    except (OSError, ValueError) as error:
        reason = str(error).partition("\n")[0]
        raise MetricUnavailable(
            f"cannot load {kind} model {model!r} ({reason}); pass a hub id reachable from here "
            "or a local folder saved with save_pretrained (safetensors weights)."
        ) from error


class SourceSimilarity(Metric):
    """Cosine similarity between features of the generated image and of the source image (DINO, SSCD)."""

    batch_size: int = 16

    @abstractmethod
    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """One feature row per image."""

    def score(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        scores: list[float] = []
        for batch in batches(items, self.batch_size):
            generated = self.embed([item.generated for item in batch])
            source = self.embed([item.source for item in batch])
            scores += F.cosine_similarity(generated, source, dim=-1).cpu().tolist()
        return [{self.keys[0]: value} for value in scores]
