"""FLUX.1 Kontext as a zero-shot baseline: an instruction-following image editor given the source image.

This is what a user tries first: no fine-tune, no driving image, only the source photo and a sentence. The
sentence is :func:`imposter.prompts.edit_instruction` of the captions: the source caption's subject without
its article, then the driving caption's action ("a dog" + "a cat drinking water from a mug" -> "Change the
image to show the dog drinking water from a mug, keeping the dog's identity and appearance."); when the
driving caption has no action to find, the target prompt is shown instead. The driving image itself is never
seen: the baseline measures how far the captions alone carry the action.

Sampling is ``FluxKontextPipeline.__call__`` at the family's defaults (28 steps, distilled guidance 3.5, the
pipeline's own), with the source's VAE latents as the image to edit (the pipeline's own encoding: the
posterior mode, shifted and scaled) and the run's seeded noise as the initial latents, at the pair's size
(``max_area`` set to it, so the pipeline does not rescale to 1024 x 1024).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..config import SamplingConfig
from ..errors import ConfigError
from ..families.base import SamplingPlan
from ..personalizations import Personalization
from ..prompts import edit_instruction
from .imposter import NO_GUIDANCE
from .references import _Reference

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair

CHECKPOINT = "black-forest-labs/FLUX.1-Kontext-dev"


class KontextMethod(_Reference):
    """FLUX.1 Kontext editing the source image by an instruction composed from the captions; learns nothing."""

    name = "kontext"
    description = "baseline: FLUX.1 Kontext editing the source image by an instruction from the captions"
    families = ("flux",)
    # what defines it: no stepwise prompting, no frequency guidance (recorded as such in config.json)
    fixed_sampling = {"k": 0, **NO_GUIDANCE}

    def check_model(self, engine: Engine) -> None:
        """ConfigError unless ``engine`` holds a FluxKontextPipeline."""
        pipeline = type(engine.pipe)
        if not any(cls.__name__ == "FluxKontextPipeline" for cls in pipeline.__mro__):
            raise ConfigError(
                f"$method kontext needs a FLUX.1 Kontext checkpoint ($model {CHECKPOINT}); "
                f"this model is a {pipeline.__name__} ({engine.family.title})"
            )

    def instruction(self, pair: PreparedPair) -> str:
        """The edit instruction for ``pair`` (see the module docstring)."""
        return edit_instruction(pair.source_prompt, pair.driving_prompt, pair.target_prompt)

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
        instruction = engine.conditioning(pair, self.instruction(pair))
        source = pair.source_latents.to(engine.device)
        plan = SamplingPlan(
            lambda index: instruction,
            engine.conditioning(pair, ""),
            sampling,
            None,
            generators,
            progress,
            image=source,
        )
        return engine.family.sample(engine.pipe, noise, plan)
