"""SDEdit (Meng et al., ICLR 2022) as a reference row: what a user tries first, img2img of the driving image.

The driving latents are noised to the timestep a ``strength`` of the way up the schedule and denoised with
the *target* caption by the model with ImPoster's fine-tune (the LoRA on both pairs; this row shares it).
The layout comes from the driving image itself, the subject from the caption and the LoRA. Strength 0.8 is
diffusers' ``StableDiffusionImg2ImgPipeline`` default, the value a user gets without choosing; the user may
change it (``--driving-strength``, which starts any method from the driving image: SamplingConfig).
"""

from __future__ import annotations

from .imposter import NO_GUIDANCE, ImPosterMethod, start_step

__all__ = ["STRENGTH", "SDEditMethod", "start_step"]

STRENGTH = 0.8  # diffusers' img2img default (module docstring)


class SDEditMethod(ImPosterMethod):
    """The driving image noised to ``strength``, denoised with the target caption and ImPoster's LoRA."""

    def __init__(self, strength: float = STRENGTH):
        super().__init__(
            "sdedit",
            f"reference: SDEdit (img2img) of the driving image at strength {strength}, target caption, "
            "ImPoster's LoRA",
            {"k": 0, **NO_GUIDANCE},
            {"driving_strength": strength},
        )
