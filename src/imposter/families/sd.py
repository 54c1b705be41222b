"""Stable Diffusion 1.x/2.x: one CLIP text encoder, a UNet on epsilon or v, DDIM by default (the paper's set-up)."""

from __future__ import annotations

import torch

from .base import Conditioning, Family, SamplingPlan
from .losses import DenoisingLoss


def padded_ids(tokenizer, prompt: str) -> torch.Tensor:
    """Token ids (1, L) of ``prompt``, padded and truncated to the tokenizer's length as the pipelines do."""
    return tokenizer(
        prompt,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def clip_embeds(tokenizer, text_encoder, prompt: str, device) -> torch.Tensor:
    """A CLIP text encoder's last hidden state (1, L, D) for ``prompt``, padded to the tokenizer's length."""
    return text_encoder(padded_ids(tokenizer, prompt).to(device))[0].float()


class StableDiffusion(Family):
    """SD 1.x/2.x checkpoints (``StableDiffusionPipeline``)."""

    name = "sd"
    title = "SD 1.x/2.x"
    pipeline_classes = ("StableDiffusionPipeline",)
    load_kwargs = {"safety_checker": None, "requires_safety_checker": False}  # off, as in the authors' code
    lora_prefix = "unet"
    # paper Sec. 4 and diffusers' examples/dreambooth/train_dreambooth_lora.py: the UNet's attention projections
    lora_targets = ("to_q", "to_k", "to_v", "to_out.0")

    @torch.no_grad()
    def encode(self, pipe, prompt: str) -> Conditioning:
        return Conditioning(clip_embeds(pipe.tokenizer, pipe.text_encoder, prompt, pipe._execution_device))

    def training_loss(self, pipe) -> DenoisingLoss:
        return DenoisingLoss.for_scheduler(pipe.scheduler)

    def sample(self, pipe, noise: torch.Tensor, plan: SamplingPlan) -> torch.Tensor:
        # Our own loop (``sampling.denoise``), not StableDiffusionPipeline.__call__: "denoised" guidance reads
        # each scheduler step's x0 prediction (``pred_original_sample``), which ``callback_on_step_end`` never
        # sees, and DDIM's x0 is what the guidance of the toy-world measurements (docs/toy-defaults.md) used.
        from ..sampling import denoise

        return denoise(
            pipe.unet,
            pipe.scheduler,
            noise,
            lambda index: plan.schedule(index).embeds,
            plan.uncond.embeds,
            plan.sampling.guidance_scale,
            plan.sampling.steps,
            eta=plan.sampling.eta,
            hook=plan.hook,
            generator=plan.generators,
            progress=plan.progress,
            start=plan.start,
        )
