"""SDEdit (Meng et al., ICLR 2022) as a reference row: what a user tries first, img2img of the driving image.

The driving latents are noised to the timestep a ``strength`` of the way up the schedule and denoised with
the *target* caption by the model with ImPoster's fine-tune (the LoRA on both pairs; this row shares it).
The layout comes from the driving image itself, the subject from the caption and the LoRA. Strength 0.8 is
diffusers' ``StableDiffusionImg2ImgPipeline`` default, the value a user gets without choosing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..config import SamplingConfig
from ..families.base import SamplingPlan
from ..personalizations import Personalization
from .imposter import NO_GUIDANCE, ImPosterMethod

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair

STRENGTH = 0.8  # diffusers' img2img default (module docstring)


def start_step(steps: int, strength: float) -> int:
    """The first of ``steps`` denoising steps that img2img runs at ``strength`` (diffusers' rule)."""
    return steps - min(int(steps * strength), steps)


class SDEditMethod(ImPosterMethod):
    """The driving image noised to ``strength``, denoised with the target caption and ImPoster's LoRA."""

    families = ("sd",)  # measured on SD; FLUX.1's sampler has no late start (SamplingPlan.start)

    def __init__(self, strength: float = STRENGTH):
        super().__init__(
            "sdedit",
            f"reference: SDEdit (img2img) of the driving image at strength {strength}, target caption, "
            "ImPoster's LoRA",
            {"k": 0, **NO_GUIDANCE},
        )
        self.strength = strength

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
        start = start_step(sampling.steps, self.strength)
        scheduler = engine.pipe.scheduler
        scheduler.set_timesteps(sampling.steps, device=noise.device)
        driving = pair.driving_latents[:1].to(noise.device, noise.dtype).expand(len(noise), -1, -1, -1)
        noised = scheduler.add_noise(driving, noise, scheduler.timesteps[start : start + 1])
        target = engine.conditioning(pair, pair.target_prompt)
        plan = SamplingPlan(
            lambda index: target, engine.conditioning(pair, ""), sampling, None, generators, progress, start
        )
        return engine.family.sample(engine.pipe, noised, plan)
