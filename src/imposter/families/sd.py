"""Stable Diffusion 1.x/2.x: one CLIP text encoder, a UNet on epsilon or v, DDIM by default (the paper's set-up)."""

from __future__ import annotations

import torch

from ..sampling import alpha_prod_at, guided_steps, observed
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


# the UNet's ResNet blocks' convolutions (diffusers' ResnetBlock2D): what a "wide" LoRA adds on SD and SDXL
RESNET_CONVOLUTIONS = ("conv1", "conv2", "conv_shortcut")


class StableDiffusion(Family):
    """SD 1.x/2.x checkpoints (``StableDiffusionPipeline``)."""

    name = "sd"
    title = "SD 1.x/2.x"
    pipeline_classes = ("StableDiffusionPipeline",)
    load_kwargs = {"safety_checker": None, "requires_safety_checker": False}  # off, as in the authors' code
    lora_prefix = "unet"
    # paper Sec. 4 and diffusers' examples/dreambooth/train_dreambooth_lora.py: the UNet's attention projections
    lora_targets = ("to_q", "to_k", "to_v", "to_out.0")
    lora_wide_targets = (*lora_targets, *RESNET_CONVOLUTIONS)

    @torch.no_grad()
    def encode(self, pipe, prompt: str) -> Conditioning:
        return Conditioning(clip_embeds(pipe.tokenizer, pipe.text_encoder, prompt, pipe._execution_device))

    def training_loss(self, pipe) -> DenoisingLoss:
        return DenoisingLoss.for_scheduler(pipe.scheduler)

    @torch.no_grad()
    def predict_noise(
        self, pipe, latents: torch.Tensor, timestep: int, conditioning: Conditioning
    ) -> torch.Tensor:
        unet = pipe.unet
        embeds = conditioning.embeds.to(latents.device, unet.dtype)
        return unet(latents.to(unet.dtype), timestep, encoder_hidden_states=embeds).sample

    def sample(self, pipe, noise: torch.Tensor, plan: SamplingPlan) -> torch.Tensor:
        return sample_unet_pipeline(pipe, noise, plan)


def sample_unet_pipeline(pipe, noise: torch.Tensor, plan: SamplingPlan, pooled: bool = False) -> torch.Tensor:
    """``StableDiffusionPipeline.__call__`` (``StableDiffusionXLPipeline``'s with ``pooled``: its pooled embedding
    goes along, switched through ``add_text_embeds``) with ImPoster's ``callback_on_step_end``
    (``sampling.guided_steps``). The hook's x0 is the scheduler step's own ``pred_original_sample``
    (``sampling.observed``), for any scheduler that gives one. ``plan.start`` > 0 (img2img): the timesteps
    before it are cut, as diffusers' img2img pipelines cut them."""
    sampling, scheduler, dtype = plan.sampling, pipe.scheduler, pipe.unet.dtype
    rows = noise.shape[0]
    cfg = sampling.guidance_scale > 1 and pipe.unet.config.time_cond_proj_dim is None  # the pipeline's rule
    uncond = plan.uncond.expand(rows).to(dtype)

    def carry(conditioning: Conditioning) -> dict[str, torch.Tensor]:
        """The callback tensors of a step's conditioning: [uncond, cond] under classifier-free guidance, as the
        pipeline stacks them."""
        cond = conditioning.expand(rows).to(dtype)
        both = Conditioning.cat([uncond, cond]) if cfg else cond
        return {"prompt_embeds": both.embeds, **({"add_text_embeds": both.pooled} if pooled else {})}

    with observed(scheduler, plan.start) as seen:

        def observe(position: int, timestep, latents: torch.Tensor):
            upcoming = scheduler.timesteps[position + 1] if position + 1 < len(scheduler.timesteps) else None
            denoised = getattr(seen["out"], "pred_original_sample", None)
            alpha_next = alpha_prod_at(scheduler, None if upcoming is None else int(upcoming))
            return latents.float(), denoised, alpha_next**0.5, (1.0 - alpha_next) ** 0.5

        def restore(guided: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
            return guided.to(latents.dtype)

        first = plan.schedule(plan.start).expand(rows).to(dtype)
        embeds = {"prompt_embeds": first.embeds, "negative_prompt_embeds": uncond.embeds}
        if pooled:
            embeds |= {"pooled_prompt_embeds": first.pooled, "negative_pooled_prompt_embeds": uncond.pooled}
        # img2img: the latents come noised to step ``start``; the pipeline's init_noise_sigma scaling
        # (1 for DDIM) is for pure noise
        latents = noise if plan.start == 0 else noise / scheduler.init_noise_sigma
        factor = Family.vae_scale_factor(pipe)
        pipe.set_progress_bar_config(disable=not plan.progress, leave=False, desc="denoising")
        return pipe(
            **embeds,
            latents=latents.to(dtype),
            height=noise.shape[-2] * factor,
            width=noise.shape[-1] * factor,
            num_inference_steps=sampling.steps,
            guidance_scale=sampling.guidance_scale,
            eta=sampling.eta,
            generator=list(plan.generators) if plan.generators else None,
            output_type="latent",
            callback_on_step_end=guided_steps(plan.schedule, plan.hook, observe, restore, carry, plan.start),
            callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", *(["add_text_embeds"] * pooled)],
            return_dict=False,
        )[0].float()
