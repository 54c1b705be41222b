"""SDXL: two CLIP text encoders (sequence outputs side by side, text_encoder_2's pooled projection), a UNet
that also reads the pooled embedding and six "time ids" (original size, crop corner, target size).

Defaults from diffusers' examples/dreambooth/train_dreambooth_lora_sdxl.py (huggingface/diffusers@58eb52c):
LoRA on the UNet's ``to_k, to_q, to_v, to_out.0`` (line 1225), rank 4 (line 658, as ours), AdamW lr 1e-4
(line 491) with weight decay 1e-4 (line 572), gradient clip 1.0 (line 597), gradient checkpointing as an
option (line 1201, on here by default: SDXL's UNet does not fine-tune on a 24 GB card without it); time ids
``original_size + crop top-left + target_size`` (line 1477), which for our fitted images are
``(h, w, 0, 0, h, w)``, exactly what ``StableDiffusionXLPipeline.__call__`` computes for (h, w).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Conditioning, Family, SamplingPlan
from .losses import DenoisingLoss, denoising_loss, noise_scheduler_for
from .sd import RESNET_CONVOLUTIONS, sample_unet_pipeline


def time_ids(height: int, width: int, rows: int, device, dtype) -> torch.Tensor:
    """SDXL's micro-conditioning (rows, 6) for an uncropped image of (height, width) generated at that size."""
    return torch.tensor([[height, width, 0, 0, height, width]], device=device, dtype=dtype).expand(rows, -1)


def added_conditions(
    latents, conditioning: Conditioning, vae_scale_factor: int, dtype
) -> dict[str, torch.Tensor]:
    """SDXL's UNet's ``added_cond_kwargs`` for ``latents``: the pooled embedding and the size time ids."""
    rows, (height, width) = latents.shape[0], latents.shape[-2:]
    return {
        "text_embeds": conditioning.pooled.to(latents.device, dtype),
        "time_ids": time_ids(
            height * vae_scale_factor, width * vae_scale_factor, rows, latents.device, dtype
        ),
    }


@dataclass
class SDXLDenoisingLoss(DenoisingLoss):
    """SD's epsilon (or v) MSE at uniform timesteps, with SDXL's pooled embedding and time ids."""

    vae_scale_factor: int = 8

    def __call__(
        self, model, latents, conditioning: Conditioning, noise, timesteps, dtype=None
    ) -> torch.Tensor:
        dtype = dtype or model.dtype
        added = added_conditions(latents, conditioning, self.vae_scale_factor, dtype)
        return denoising_loss(
            model,
            self.noise_scheduler,
            latents,
            conditioning.embeds,
            noise,
            timesteps,
            dtype,
            added_cond_kwargs=added,
        )


class StableDiffusionXL(Family):
    """SDXL checkpoints (``StableDiffusionXLPipeline``), e.g. stabilityai/stable-diffusion-xl-base-1.0."""

    name = "sdxl"
    title = "SDXL"
    pipeline_classes = ("StableDiffusionXLPipeline",)
    lora_prefix = "unet"
    lora_targets = ("to_k", "to_q", "to_v", "to_out.0")  # train_dreambooth_lora_sdxl.py line 1225
    lora_wide_targets = (*lora_targets, *RESNET_CONVOLUTIONS)
    finetune_defaults = {"learning_rate": 1e-4, "weight_decay": 1e-4}  # lines 491, 572
    gradient_checkpointing = True

    def text_encoders(self, pipe) -> list[torch.nn.Module]:
        return [pipe.text_encoder, pipe.text_encoder_2]

    def tokenizers(self, pipe) -> list:
        return [pipe.tokenizer, pipe.tokenizer_2]

    @torch.no_grad()
    def encode(self, pipe, prompt: str) -> Conditioning:
        """The pipeline's own ``encode_prompt``; "" under ``force_zeros_for_empty_prompt`` is zeros, as the
        pipeline's unconditional input is when no negative prompt is given."""
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt, device=pipe._execution_device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        if not prompt and pipe.config.force_zeros_for_empty_prompt:
            embeds, pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        return Conditioning(embeds.float(), pooled.float())

    def training_loss(self, pipe) -> SDXLDenoisingLoss:
        return SDXLDenoisingLoss(noise_scheduler_for(pipe.scheduler), self.vae_scale_factor(pipe))

    @torch.no_grad()
    def predict_noise(
        self, pipe, latents: torch.Tensor, timestep: int, conditioning: Conditioning
    ) -> torch.Tensor:
        unet = pipe.unet
        added = added_conditions(latents, conditioning, self.vae_scale_factor(pipe), unet.dtype)
        embeds = conditioning.embeds.to(latents.device, unet.dtype)
        return unet(
            latents.to(unet.dtype), timestep, encoder_hidden_states=embeds, added_cond_kwargs=added
        ).sample

    def sample(self, pipe, noise: torch.Tensor, plan: SamplingPlan) -> torch.Tensor:
        return sample_unet_pipeline(pipe, noise, plan, pooled=True)
