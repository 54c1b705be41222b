"""Reference rows for every table: what a method must beat, at no fine-tuning cost.

- ``copy-source`` and ``copy-driving``: the input image itself (through the VAE, like every method's
  output), the floors of pose and of identity.
- ``phase-swap``: the source latents' Fourier amplitude with the driving latents' phase, decoded; no
  diffusion model at all. Where every subject shares one skeleton this trick poses the subject almost as
  well as ImPoster: a table without it cannot tell the method's gain from the benchmark's gift.
- ``guidance-only``: the source latents moved by the frequency guidance alone (the method's own steps
  and scales, no UNet), decoded.
- ``text-only``: the pretrained model with the target caption, no personalization and no guidance.

They learn nothing, so they share one empty personalization and cost seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..config import FinetuneConfig, SamplingConfig
from ..families import FAMILY_NAMES
from ..guidance import FrequencyTargets, amplitude, frequency_guidance_step, phase
from ..personalizations import Personalization
from .base import Method
from .imposter import NO_GUIDANCE, ImPosterMethod

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair


@dataclass
class NoPersonalization(Personalization):
    """What a reference method learns: nothing (only its metadata is saved)."""

    weights: ClassVar[str] = "none"

    def _save_weights(self, directory: Path) -> None:
        return None


def phase_swap(source_latents: torch.Tensor, driving_latents: torch.Tensor) -> torch.Tensor:
    """Latents with the source's Fourier amplitude and the driving image's Fourier phase (per channel)."""
    spectrum = amplitude(source_latents) * torch.exp(1j * phase(driving_latents))
    return torch.fft.ifft2(spectrum, dim=(-2, -1), norm="ortho").real.to(source_latents.dtype)


def guidance_only(
    source_latents: torch.Tensor, driving_latents: torch.Tensor, sampling: SamplingConfig
) -> torch.Tensor:
    """The source latents after ``sampling.steps`` frequency-guidance steps at the sampling's scales, no UNet."""
    targets = FrequencyTargets.from_latents(
        source_latents, driving_latents, sampling.guidance_normalization, sampling.phase_cutoff
    )
    latents = source_latents
    for _ in range(sampling.steps):
        latents = frequency_guidance_step(
            latents, targets, sampling.amp_scale, sampling.phase_scale, sampling.phase_distance
        )
    return latents


class _Reference(Method):
    """A method that learns nothing; it works on the latents every family hands its methods."""

    fixed_finetune = {"kind": "none"}
    families = FAMILY_NAMES

    def personalize(
        self, engine: Engine, pair: PreparedPair, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        return NoPersonalization(method=self.name)

    def load_personalization(self, directory: Path, metadata: dict[str, Any]) -> Personalization:
        return NoPersonalization(method=self.name, info=metadata.get("info") or {})


class LatentReference(_Reference):
    """A reference computed from the pair's clean latents alone; the noise only sets the batch size."""

    def __init__(self, name: str, description: str, make) -> None:
        self.name = name
        self.description = description
        self._make = make

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
        latents = self.latents(pair, sampling)
        return latents.to(noise.device, noise.dtype).expand(len(noise), -1, -1, -1).clone()

    def latents(self, pair: PreparedPair, sampling: SamplingConfig) -> torch.Tensor:
        """The reference's clean latents (1, C, h, w) for ``pair``."""
        return self._make(pair.source_latents, pair.driving_latents, sampling)


class TextOnlyMethod(_Reference, ImPosterMethod):
    """The pretrained model, target caption only: ImPoster's sampler with K = 0 and no guidance."""

    def __init__(self) -> None:
        ImPosterMethod.__init__(
            self,
            "text-only",
            "reference: the pretrained model with the target caption, no personalization, no guidance",
            {"k": 0, **NO_GUIDANCE},
        )


def _source(source: torch.Tensor, driving: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    return source


def _driving(source: torch.Tensor, driving: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    return driving


def _phase_swap(source: torch.Tensor, driving: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
    return phase_swap(source, driving)


# module-level functions, not lambdas: a bench with --num-processes pickles the methods to its workers
_LATENT_REFERENCES = {
    "copy-source": ("reference: the source image itself (through the VAE)", _source),
    "copy-driving": ("reference: the driving image itself (through the VAE)", _driving),
    "phase-swap": ("reference: source Fourier amplitude with driving phase, no model", _phase_swap),
    "guidance-only": (
        "reference: the source latents moved by the frequency guidance alone, no UNet",
        guidance_only,
    ),
}


def reference(name: str) -> Method:
    """A reference method by name (text-only or one of the latent references)."""
    if name == "text-only":
        return TextOnlyMethod()
    description, make = _LATENT_REFERENCES[name]
    return LatentReference(name, description, make)


# the floors every table shows (grey in its picture); retarget-warp (methods.retarget: it reads the pair's
# keypoints) is imposter's floor
REFERENCE_NAMES: tuple[str, ...] = (*_LATENT_REFERENCES, "text-only", "retarget-warp")
