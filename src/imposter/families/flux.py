"""FLUX.1: a rectified-flow transformer over 2x2 patch tokens, conditioned on T5's sequence output and CLIP's
pooled output; FLUX.1-dev is guidance-distilled (the guidance scale is an input embedding, no CFG batch).

Fine-tuning follows diffusers' examples/dreambooth/train_dreambooth_lora_flux.py (huggingface/diffusers@58eb52c):
flow matching ``x_t = (1 - s) x0 + s e`` with target ``e - x0`` (lines 1779, 1820), timesteps drawn uniformly
from the training scheduler's 1000 (weighting scheme "none", line 543, through
``compute_density_for_timestep_sampling``, lines 1766-1777), the transformer fed ``t / 1000`` and, for
FLUX.1-dev, the guidance embedding at 3.5 (line 497); LoRA rank 4 (line 376) on the attention projections of
both streams, ``attn.to_k/q/v, to_out.0, add_k/q/v_proj, to_add_out`` (lines 1257-1265: the trainer also adds
the feed-forward layers; the paper's LoRA is on attention, so we stop there); AdamW lr 1e-4 (line 490) with
weight decay 1e-4 (line 588), gradient clip 1.0 (line 622); gradient checkpointing (line 1249; on here).

Sampling runs ``FluxPipeline.__call__`` at its own defaults (28 steps, guidance 3.5). Frequency guidance works
on the spatial latents: the packed tokens are unpacked before the FFT and repacked after. In "denoised"
space, x0 = x_t - s v, with v read off the Euler step the scheduler just took.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..sampling import guided_steps, observed
from .base import Conditioning, Family, SamplingPlan

TRAINING_GUIDANCE = 3.5  # train_dreambooth_lora_flux.py line 497: FLUX.1-dev's distilled guidance in training


def pack(latents: torch.Tensor) -> torch.Tensor:
    """Spatial latents (B, C, h, w) -> FLUX.1's patch tokens (B, h/2 * w/2, 4C)."""
    from diffusers import FluxPipeline

    rows, channels, height, width = latents.shape
    return FluxPipeline._pack_latents(latents, rows, channels, height, width)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Patch tokens (B, h/2 * w/2, 4C) -> spatial latents (B, C, h, w); ``height``, ``width`` in latent cells."""
    rows, count, features = tokens.shape
    spatial = tokens.view(rows, height // 2, width // 2, features // 4, 2, 2)
    return spatial.permute(0, 3, 1, 4, 2, 5).reshape(rows, features // 4, height, width)


def image_ids(height: int, width: int, device, dtype) -> torch.Tensor:
    """The position ids of the patch tokens of (height, width) latents, as the pipeline makes them."""
    from diffusers import FluxPipeline

    return FluxPipeline._prepare_latent_image_ids(1, height // 2, width // 2, device, dtype)


def unshifted_sigmas(steps: int) -> np.ndarray:
    """FluxPipeline's sigmas before its resolution shift (``np.linspace(1, 1 / steps, steps)``)."""
    return np.linspace(1.0, 1 / steps, steps)


def start_sigmas(pipe, steps: int, start: int, size: tuple[int, int]) -> torch.Tensor:
    """The sigmas ``FluxPipeline`` samples with from step ``start`` of ``steps`` on, for spatial latents of
    ``size`` (h, w): its unshifted sigmas from ``start``, shifted by the ``mu`` of that many patch tokens, as
    ``__call__`` does (the shift is elementwise, so this is the full schedule's tail)."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    config = pipe.scheduler.config
    mu = calculate_shift(
        (size[0] // 2) * (size[1] // 2),
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    pipe.scheduler.set_timesteps(sigmas=unshifted_sigmas(steps)[start:], mu=mu)
    return pipe.scheduler.sigmas


def call_size(pipe, height: int, width: int) -> dict[str, int]:
    """The size arguments (pixels) that make a FLUX.1 pipeline's ``__call__`` generate exactly ``height`` x
    ``width``: FluxKontextPipeline rescales them to its ``max_area`` (default 1024 x 1024, aspect ratio kept),
    so that is given as their product."""
    size = {"height": height, "width": width}
    if "max_area" in inspect.signature(pipe.__call__).parameters:
        size["max_area"] = height * width
    return size


@dataclass
class FlowMatchingLoss:
    """FLUX.1's training loss: uniform timesteps, ``x_t = (1 - s) x0 + s e``, MSE of the velocity to ``e - x0``."""

    timesteps: torch.Tensor  # the training scheduler's timesteps (sigma * num_train_timesteps), on the CPU
    num_train_timesteps: int
    guidance: float | None  # FLUX.1-dev's guidance embedding; None for a model without it (schnell)

    @classmethod
    def for_scheduler(cls, scheduler, guidance_embeds: bool) -> FlowMatchingLoss:
        """The loss for a pipeline whose flow-matching scheduler is ``scheduler`` (its config, unshifted as trained)."""
        fresh = type(scheduler).from_config(scheduler.config)
        steps = fresh.config.num_train_timesteps
        return cls(fresh.timesteps.clone(), steps, TRAINING_GUIDANCE if guidance_embeds else None)

    def draw(self, generator: torch.Generator, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from diffusers.training_utils import compute_density_for_timestep_sampling

        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        u = compute_density_for_timestep_sampling("none", latents.shape[0], generator=generator)
        indices = (u * self.num_train_timesteps).long()
        return noise, self.timesteps[indices].to(latents.device)

    def __call__(
        self, model, latents, conditioning: Conditioning, noise, timesteps, dtype=None
    ) -> torch.Tensor:
        rows, _, height, width = latents.shape
        sigmas = (timesteps.float() / self.num_train_timesteps).view(-1, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        dtype = dtype or model.dtype
        guidance = None
        if self.guidance is not None:
            guidance = torch.full((rows,), self.guidance, device=latents.device, dtype=torch.float32)
        velocity = model(
            hidden_states=pack(noisy).to(dtype),
            timestep=(timesteps.float() / self.num_train_timesteps).to(dtype),
            guidance=guidance,
            pooled_projections=conditioning.pooled.to(dtype),
            encoder_hidden_states=conditioning.embeds.to(dtype),
            txt_ids=torch.zeros(conditioning.embeds.shape[1], 3, device=latents.device, dtype=dtype),
            img_ids=image_ids(height, width, latents.device, dtype),
            return_dict=False,
        )[0]
        return F.mse_loss(unpack(velocity, height, width).float(), (noise - latents).float())


class Flux(Family):
    """FLUX.1 checkpoints (``FluxPipeline``), e.g. black-forest-labs/FLUX.1-dev, and FLUX.1 Kontext
    (``FluxKontextPipeline``, black-forest-labs/FLUX.1-Kontext-dev: the same transformer, which can also read an
    image to edit; without one it generates from text as FluxPipeline does)."""

    name = "flux"
    title = "FLUX.1"
    pipeline_classes = ("FluxPipeline", "FluxKontextPipeline")
    lora_prefix = "transformer"
    lora_targets = (  # train_dreambooth_lora_flux.py lines 1257-1265 (the attention projections)
        "attn.to_k",
        "attn.to_q",
        "attn.to_v",
        "attn.to_out.0",
        "attn.add_k_proj",
        "attn.add_q_proj",
        "attn.add_v_proj",
        "attn.to_add_out",
    )
    # and the feed-forward layers of both streams and the single blocks' MLP (what diffusers' FLUX LoRA
    # trainer adds with --lora_layers; the transformer has no convolutions)
    lora_wide_targets = (
        *lora_targets, "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2", "proj_mlp",
    )  # fmt: skip
    finetune_defaults = {"learning_rate": 1e-4, "weight_decay": 1e-4}  # lines 490, 588
    # FluxPipeline.__call__ defaults: 28 steps, (distilled) guidance 3.5. K stays the paper's 5 (of 28 here,
    # not 50: the driving caption then shapes the first 18% of the trajectory rather than 10%; unmeasured).
    # The guidance scales: the SD toy's (s_p 0.2, cutoff 0.35, s_a 0.03) cost the FLUX-form toy model 0.59 of
    # its subject for no pose; on its tune split phase guidance helps only at s_p 0.01-0.03, with amplitude
    # guidance off (it cancelled the gain), and a 0.25 low-pass keeps the same gain (docs/toy-flux.md). On
    # FLUX.1-dev's 16x128x128 latents these are a starting point, unmeasured.
    sampling_defaults = {
        "steps": 28,
        "guidance_scale": 3.5,
        "amp_scale": 0.0,
        "phase_scale": 0.03,
        "phase_cutoff": 0.25,
        "source_attention_from": None,  # no UNet decoder to attend with (imposter.source_attention)
    }
    gradient_checkpointing = True

    @staticmethod
    def denoiser(pipe) -> torch.nn.Module:
        return pipe.transformer

    def text_encoders(self, pipe) -> list[torch.nn.Module]:
        return [pipe.text_encoder, pipe.text_encoder_2]

    def tokenizers(self, pipe) -> list:
        return [pipe.tokenizer]  # CLIP's 77 tokens; T5 reads up to 512

    def set_up(self, pipe, ddim: bool, log):
        return pipe  # a flow-matching model samples with its own scheduler: DDIM does not apply

    def size_multiple(self, pipe) -> int:
        return 2 * self.vae_scale_factor(pipe)  # latents are packed into 2x2 patches

    def native_size(self, pipe) -> int:
        # FluxPipeline's default_sample_size is a constant (128 latent cells: 1024 px); the VAE's sample_size is
        # the checkpoint's own training side (FLUX.1: 1024, the toy FLUX: 64)
        side = getattr(pipe.vae.config, "sample_size", None)
        return int(side) if side else int(pipe.default_sample_size) * self.vae_scale_factor(pipe)

    @torch.no_grad()
    def encode(self, pipe, prompt: str) -> Conditioning:
        # T5 reads up to 512 tokens (FLUX.1's tokenizer_2 says so too); a T5 trained on shorter padded
        # captions (the toy FLUX: 16) says so in its tokenizer's model_max_length
        length = min(512, int(pipe.tokenizer_2.model_max_length))
        embeds, pooled, _ = pipe.encode_prompt(
            prompt, prompt_2=None, device=pipe._execution_device, num_images_per_prompt=1,
            max_sequence_length=length,
        )  # fmt: skip
        return Conditioning(embeds.float(), pooled.float())

    def training_loss(self, pipe) -> FlowMatchingLoss:
        return FlowMatchingLoss.for_scheduler(pipe.scheduler, bool(pipe.transformer.config.guidance_embeds))

    def noised_start(
        self, pipe, latents: torch.Tensor, noise: torch.Tensor, steps: int, start: int
    ) -> torch.Tensor:
        """Flow matching's ``(1 - s) x0 + s e`` at the sigma ``FluxPipeline`` gives step ``start`` of ``steps``
        for these latents (its shifted schedule: ``start_sigmas``; FluxImg2ImgPipeline's starting point)."""
        sigma = start_sigmas(pipe, steps, start, latents.shape[-2:])[0]
        return (1.0 - sigma) * latents + sigma * noise

    def sample(self, pipe, noise: torch.Tensor, plan: SamplingPlan) -> torch.Tensor:
        """``FluxPipeline.__call__`` with ImPoster's ``callback_on_step_end`` (``sampling.guided_steps``) on the
        unpacked latents. ``plan.image`` goes to FluxKontextPipeline as the image to edit (latents: not encoded
        again); ``plan.start`` > 0 (img2img) hands the pipeline the schedule's sigmas from that step on
        (``start_sigmas``); ``plan.uncond`` is unused: FLUX.1-dev is
        guidance-distilled, ``guidance_scale`` is its guidance embedding. Eta does not apply (the Euler flow
        sampler is deterministic)."""
        schedule, sampling, hook = plan.schedule, plan.sampling, plan.hook
        rows, _, height, width = noise.shape
        transformer = pipe.transformer
        dtype = transformer.dtype
        scheduler = pipe.scheduler
        current = {"pooled": schedule(0).pooled}

        # The one thing the pipeline cannot express: FluxPipeline._callback_tensor_inputs has no
        # pooled_prompt_embeds, so the CLIP pooled half of the stepwise prompt is swapped in just before
        # each transformer call instead.
        def swap_pooled(module, args, kwargs):
            kwargs["pooled_projections"] = current["pooled"].to(dtype).expand(rows, -1)
            return args, kwargs

        def carry(conditioning: Conditioning) -> dict[str, torch.Tensor]:
            current["pooled"] = conditioning.pooled  # for swap_pooled, before the next transformer call
            return {"prompt_embeds": conditioning.embeds.to(dtype).expand(rows, -1, -1)}

        first = schedule(0)
        factor = self.vae_scale_factor(pipe)
        pipe.set_progress_bar_config(disable=not plan.progress, leave=False, desc="denoising")
        handle = transformer.register_forward_pre_hook(swap_pooled, with_kwargs=True, prepend=True)
        with observed(scheduler) as seen:

            def observe(index: int, timestep, latents: torch.Tensor):
                sigma, following = float(scheduler.sigmas[index]), float(scheduler.sigmas[index + 1])
                denoised = None
                if sampling.guidance_space == "denoised":  # x0 = x_t - sigma v, v read off the Euler step
                    velocity = (latents.float() - seen["sample"].float()) / (following - sigma)
                    denoised = unpack(latents.float() - following * velocity, height, width)
                return unpack(latents.float(), height, width), denoised, 1.0 - following, following

            def restore(guided: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
                return pack(guided).to(latents.dtype)

            try:
                tokens = pipe(
                    prompt_embeds=first.embeds.to(dtype).expand(rows, -1, -1),
                    pooled_prompt_embeds=first.pooled.to(dtype).expand(rows, -1),
                    latents=pack(noise).to(dtype),
                    **({} if plan.image is None else {"image": plan.image.to(dtype)}),
                    **call_size(pipe, height * factor, width * factor),
                    num_inference_steps=sampling.steps - plan.start,
                    **({} if plan.start == 0 else {"sigmas": unshifted_sigmas(sampling.steps)[plan.start :]}),
                    guidance_scale=sampling.guidance_scale,
                    output_type="latent",
                    callback_on_step_end=guided_steps(schedule, hook, observe, restore, carry, plan.start),
                    callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
                    return_dict=False,
                )[0]
            finally:
                handle.remove()
        return unpack(tokens.float(), height, width)
