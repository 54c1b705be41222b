"""Training losses of the model families: the interface a fine-tune calls, and SD 1.x/2.x's denoising loss
(SDXL extends it; FLUX.1's flow matching lives in :mod:`imposter.families.flux`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from .base import Conditioning


def noise_scheduler_for(scheduler):
    """A DDPM scheduler with the pipeline's betas and prediction type, for adding training noise."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler.config)


def denoising_loss(
    unet,
    noise_scheduler,
    latents: torch.Tensor,
    embeds: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    dtype: torch.dtype | None = None,
    **unet_kwargs: Any,
) -> torch.Tensor:
    """The diffusion training loss: MSE between the UNet's output and its target (epsilon or v).

    ``dtype``: the UNet's compute dtype (None: ``unet.dtype``, which walks every module; a training loop
    reads it once). ``unet_kwargs``: what else the UNet reads (SDXL's ``added_cond_kwargs``).
    """
    dtype = dtype or unet.dtype
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(
        noisy.to(dtype), timesteps, encoder_hidden_states=embeds.to(dtype), **unet_kwargs
    ).sample
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"unsupported prediction type {kind!r}")
    return F.mse_loss(prediction.float(), target.float())


def draw_noise(generator: torch.Generator, latents: torch.Tensor, num_train_timesteps: int, count: int):
    """Noise like ``latents`` and ``count`` uniform timesteps, drawn on the CPU so every device agrees."""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    timesteps = torch.randint(0, num_train_timesteps, (count,), generator=generator).to(latents.device)
    return noise, timesteps


class TrainingLoss(Protocol):
    """A model family's training loss: draw the noise and timesteps for a batch, then the loss."""

    def draw(self, generator: torch.Generator, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise like ``latents`` and one timestep per row, drawn on the CPU from ``generator``."""
        ...

    def __call__(
        self,
        model,
        latents: torch.Tensor,
        conditioning: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The loss of ``model`` denoising ``latents`` noised by ``noise`` at ``timesteps``.

        ``dtype``: the model's compute dtype, read once per fine-tune by the caller (None: ``model.dtype``,
        which diffusers finds by walking every module: with a LoRA, about 8% of a step on the toy UNet).
        """
        ...


@dataclass
class DenoisingLoss:
    """SD 1.x/2.x: timesteps uniform over the training schedule, MSE to epsilon (or v)."""

    noise_scheduler: Any  # a DDPM scheduler with the pipeline's betas and prediction type

    @classmethod
    def for_scheduler(cls, scheduler) -> DenoisingLoss:
        """The loss for a pipeline whose (sampling) scheduler is ``scheduler``."""
        return cls(noise_scheduler_for(scheduler))

    def draw(self, generator: torch.Generator, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return draw_noise(
            generator, latents, self.noise_scheduler.config.num_train_timesteps, latents.shape[0]
        )

    def __call__(self, model, latents, conditioning, noise, timesteps, dtype=None) -> torch.Tensor:
        # a Conditioning (ImPoster) or a bare embedding tensor (the SD peers' learned text tensors)
        embeds = conditioning.embeds if isinstance(conditioning, Conditioning) else conditioning
        return denoising_loss(model, self.noise_scheduler, latents, embeds, noise, timesteps, dtype)
