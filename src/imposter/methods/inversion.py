"""What the inversion peers (HiPer, ADI) share: a frozen model, fixed settings, sampling from one conditioning.

``frozen`` switches gradients off on the pipeline's modules while a text tensor is learned.

They learn text-side tensors (an ``EmbeddingPersonalization``) and sample with plain classifier-free
guidance from a conditioning built from those tensors: no stepwise prompting (K = 0) and no
frequency guidance, which belong to ImPoster.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import SamplingConfig
from ..families.base import Conditioning, SamplingPlan
from ..personalizations import EmbeddingPersonalization, Personalization
from .base import Method
from .imposter import NO_GUIDANCE

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair

NO_STEPWISE_NO_GUIDANCE = {"k": 0, **NO_GUIDANCE}


@contextlib.contextmanager
def frozen(*modules: torch.nn.Module) -> Iterator[None]:
    """Turn ``requires_grad`` off on every parameter of ``modules`` inside the block; restore each flag after."""
    flags = [(p, p.requires_grad) for module in modules for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class InversionMethod(Method):
    """A method whose personalization is text tensors; subclasses say how they become a conditioning."""

    fixed_sampling = NO_STEPWISE_NO_GUIDANCE

    @abstractmethod
    def conditioning(
        self, engine: Engine, pair: PreparedPair, personalization: EmbeddingPersonalization
    ) -> contextlib.AbstractContextManager[tuple[torch.Tensor, torch.Tensor]]:
        """A context (set up the UNet inside it if needed) giving the (conditional, unconditional) embeddings."""

    def load_personalization(self, directory: Path, metadata: dict[str, Any]) -> Personalization:
        return EmbeddingPersonalization.load(directory, self.name, metadata.get("info"))

    def sample(
        self,
        engine: Engine,
        pair: PreparedPair,
        personalization: Personalization,
        noise: torch.Tensor,
        sampling: SamplingConfig,
        progress: bool = True,
        generators: Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        with self.conditioning(engine, pair, personalization) as (cond, uncond):
            plan = SamplingPlan(
                lambda index: Conditioning(cond), Conditioning(uncond), sampling, None, generators, progress
            )
            return engine.family.sample(engine.pipe, noise, plan)


@contextlib.contextmanager
def plain(cond: torch.Tensor, uncond: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A conditioning that needs nothing set up."""
    yield cond, uncond
