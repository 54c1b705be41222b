"""What a bench runs: the methods with their resolved settings, the metrics and the models they load, the
settings a folder must match to be resumed, and how methods group around one fine-tune."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import FITS, FinetuneConfig, SamplingConfig
from ..errors import ConfigError
from ..methods import get_method
from ..methods.base import Method
from ..metrics.base import Metric
from ..metrics.registry import DEFAULT_METRICS, build_metrics, ground_truth_metrics
from ..models import bundled_weights, resolve_device, resolve_dtype
from ..plugins import named_model
from ..settings import Given, resolve
from .pairs import BenchPair

if TYPE_CHECKING:
    import torch

    from ..families.base import Family

Key = tuple[str, str, int]  # (pair id, method, seed): one image


@dataclass(frozen=True)
class MethodSetup:
    """A method (resolved once, here) with the settings it runs with (its fixed settings applied)."""

    method: Method
    finetune: FinetuneConfig
    sampling: SamplingConfig

    @property
    def name(self) -> str:
        return self.method.name

    @classmethod
    def of(
        cls,
        method: Method | str,
        finetune: Given = None,
        sampling: Given = None,
        family: Family | None = None,
    ) -> MethodSetup:
        """``method`` (an object, or a name to look up) with its settings resolved on ``family`` from the
        user's (``imposter.settings.resolve``: settings named by flags, or whole configs; None: none given)."""
        method = get_method(method) if isinstance(method, str) else method
        return cls(method, *resolve(method, family, finetune, sampling))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {"finetune": asdict(self.finetune), "sampling": asdict(self.sampling)}


@dataclass(frozen=True)
class MetricModels:
    """Which model each metric loads (None: the metric's default, the authors'; SSCD has none)."""

    clip_model: str | None = None
    dino_model: str | None = None
    dino_variant: str = "authors"
    sscd_model: str | None = None

    def settings(self, name: str) -> dict[str, Any]:
        """What the scores of metric ``name`` depend on: the model it loads ({} for a model-free one)."""
        return {
            "clip": {"model": self.clip_model},
            "dino": {"model": self.dino_model, "variant": self.dino_variant},
            "sscd": {"model": self.sscd_model},
        }.get(name, {})

    def load(
        self, names: Sequence[str], device: str | torch.device, log: Callable[[str], object]
    ) -> dict[str, Metric]:
        """The named metrics that can be loaded, by name; ``log`` says why one cannot."""
        loaded = {}
        for name in dict.fromkeys(names):
            built = build_metrics(
                [name],
                device,
                clip_model=self.clip_model,
                dino_model=self.dino_model,
                dino_variant=self.dino_variant,
                sscd_model=self.sscd_model,
                log=log,
            )
            if built:
                loaded[name] = built[0]
        return loaded


@dataclass(frozen=True)
class BenchConfig:
    """Everything a bench run needs; ``settings`` is what must match for a folder to be resumed."""

    pairs: str
    methods: tuple[MethodSetup, ...]
    seeds: tuple[int, ...] = (0,)
    model: str = "toy"
    device: str | None = None  # None: cuda if available
    dtype: str | None = None  # None: bf16/fp16 on GPU, fp32 on CPU
    fit: str = "pad"
    height: int | None = None  # None: the model's native size
    width: int | None = None
    # None: DEFAULT_METRICS, plus ground truth when pairs have targets; on a named model, its own defaults
    metrics: tuple[str, ...] | None = None
    clip_model: str | None = None
    dino_model: str | None = None
    dino_variant: str = "authors"
    sscd_model: str | None = None
    # the keypoint detector (imposter.pose_detection.detector_names()) of the pairs whose CSV gives none
    detect_pose: str | None = None

    def validate(self) -> BenchConfig:
        """ConfigError on an empty or repeated method or seed list, or an unknown --fit; return self."""
        names = [setup.name for setup in self.methods]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"$methods needs one or more distinct methods, got {names}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"$seeds needs one or more distinct seeds, got {list(self.seeds)}")
        if self.fit not in FITS:
            raise ConfigError(f"$fit must be one of {FITS}, got {self.fit!r}")
        if self.detect_pose is not None:
            from ..pose_detection import check_detector

            check_detector(self.detect_pose)
        return self

    def metric_names(self, pairs: Sequence[BenchPair]) -> tuple[str, ...]:
        """The metrics to score with: those asked for; on a named model with defaults of its own, those (the
        bundled toy models: toy ground truth and the phase score); otherwise the paper's. Ground-truth
        metrics only where the pairs have targets."""
        if self.metrics is not None:
            return tuple(self.metrics)
        truth = ground_truth_metrics()
        has_targets = any(pair.target_image for pair in pairs)
        named = named_model(self.model)
        if named is not None and named.default_metrics is not None:
            return tuple(name for name in named.default_metrics if has_targets or name not in truth)
        return DEFAULT_METRICS + (truth if has_targets else ())

    @property
    def metric_models(self) -> MetricModels:
        """Which model each metric loads."""
        return MetricModels(self.clip_model, self.dino_model, self.dino_variant, self.sscd_model)

    def settings(self, pairs: Sequence[BenchPair]) -> dict[str, Any]:
        """The settings records depend on (not the device, the seeds or the process count)."""
        return {
            "pairs": str(Path(self.pairs).expanduser().resolve()),
            "model": self.model,
            "model_weights": bundled_weights(self.model),  # a retrained toy model is another model
            "dtype": str(resolve_dtype(self.dtype, resolve_device(self.device))).removeprefix("torch."),
            "fit": self.fit,
            "height": self.height,
            "width": self.width,
            "metrics": {name: self.metric_models.settings(name) for name in self.metric_names(pairs)},
            "methods": {setup.name: setup.to_dict() for setup in self.methods},
            "seeds": list(self.seeds),
            # only when set, so that a bench made before the setting existed is still resumed
            **({"detect_pose": self.detect_pose} if self.detect_pose else {}),
        }


@dataclass(frozen=True)
class Group:
    """Methods that sample from one fine-tune; ``folder`` names it under ``adapters/<pair>/``."""

    folder: str
    finetune: FinetuneConfig
    methods: tuple[MethodSetup, ...]


def personalization_groups(setups: Sequence[MethodSetup]) -> list[Group]:
    """Group methods by personalization key and fine-tune settings, in the order given."""
    members: dict[str, list[MethodSetup]] = {}
    for setup in setups:
        key = setup.finetune.kind
        digest = hashlib.sha1(json.dumps(asdict(setup.finetune), sort_keys=True).encode()).hexdigest()[:8]
        members.setdefault(f"{key}-{digest}", []).append(setup)
    return [Group(folder, group[0].finetune, tuple(group)) for folder, group in members.items()]


def seed_batches(seeds: Sequence[int], batch_size: int | None) -> list[tuple[int, ...]]:
    """The seeds in the batches they are denoised in (None: all in one batch).

    A batch is redone whole when any of its seeds is missing, so that every image is made in the same
    company whether or not the run was interrupted (batched kernels may round differently).
    """
    size = batch_size or len(seeds)
    return [tuple(seeds[start : start + size]) for start in range(0, len(seeds), size)]


def expected_keys(pairs: Sequence[BenchPair], config: BenchConfig) -> list[Key]:
    """Every image of the bench, in report order: pairs as in the CSV, methods and seeds as given."""
    return [(p.pair_id, m.name, seed) for p in pairs for m in config.methods for seed in config.seeds]
