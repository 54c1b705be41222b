"""What every model family provides: a caption's conditioning, latents, the training loss, LoRA, sampling.

A **family** is a checkpoint's plumbing (SD 1.x/2.x, SDXL, FLUX.1); a **method** (ImPoster, its variants)
is written once against :class:`Family`. Latents cross this interface in their *spatial* form
(B, C, h, w), the form the frequency guidance works on; a family that packs them (FLUX.1's 2x2 patch
tokens) packs and unpacks inside its own ``sample``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from ..config import SamplingConfig
    from ..sampling import StepHook


@dataclass(frozen=True)
class Conditioning:
    """All the text conditioning a family's denoiser reads for one or more captions (one row each)."""

    embeds: torch.Tensor  # (N, L, D): the text encoder(s)' sequence output
    pooled: torch.Tensor | None = None  # (N, P): SDXL text_encoder_2 projection, FLUX.1 CLIP pooled

    def __getitem__(self, rows: slice) -> Conditioning:
        return Conditioning(self.embeds[rows], None if self.pooled is None else self.pooled[rows])

    def expand(self, count: int) -> Conditioning:
        """Row 0 repeated ``count`` times (a view)."""
        pooled = None if self.pooled is None else self.pooled.expand(count, -1)
        return Conditioning(self.embeds.expand(count, -1, -1), pooled)

    def to(self, dtype: torch.dtype) -> Conditioning:
        return Conditioning(self.embeds.to(dtype), None if self.pooled is None else self.pooled.to(dtype))

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        """The rows of ``parts``, in order."""
        pooled = [p.pooled for p in parts]
        return Conditioning(
            torch.cat([p.embeds for p in parts]),
            None if any(p is None for p in pooled) else torch.cat(pooled),
        )


Schedule = Callable[[int], Conditioning]  # denoising step index -> the conditioning for that step


@dataclass(frozen=True)
class SamplingPlan:
    """What a method asks of a family's sampler: each step's conditioning, the settings, the per-step hook."""

    schedule: Schedule  # step index -> conditioning (stepwise prompting)
    uncond: Conditioning  # classifier-free guidance's unconditional input
    sampling: SamplingConfig
    hook: StepHook | None = None  # after every scheduler step, on the spatial latents
    generators: Sequence[torch.Generator] | None = None  # one per row, for the sampler's own noise
    progress: bool = True
    # img2img: the latents handed in are already noised to step ``start``'s timestep; steps before it are
    # cut (SD and SDXL families; SDEdit)
    start: int = 0
    image: torch.Tensor | None = None  # latents of an image to edit (FLUX.1 family: FluxKontextPipeline)


class Family(ABC):
    """A model family: how its checkpoints encode captions and images, train, carry LoRAs and sample."""

    name: ClassVar[str]  # stored with every adapter ("sd", "sdxl", "flux")
    title: ClassVar[str]  # what a message calls it ("SDXL")
    pipeline_classes: ClassVar[tuple[str, ...]]  # model_index.json ``_class_name`` values of this family
    lora_prefix: ClassVar[str]  # key prefix of the denoiser's LoRA weights in diffusers' format
    lora_targets: ClassVar[tuple[str, ...]]  # module names diffusers' DreamBooth-LoRA trainer targets
    lora_wide_targets: ClassVar[tuple[str, ...]]  # those and more ("wide" LoRA layers: imposter.config)
    # settings where the family's own trainer or pipeline differs from the paper's (SD) defaults; the
    # user's flags win over these (imposter.settings.resolve)
    finetune_defaults: ClassVar[dict[str, Any]] = {}
    sampling_defaults: ClassVar[dict[str, Any]] = {}
    load_kwargs: ClassVar[dict[str, Any]] = {}  # extra from_pretrained arguments
    gradient_checkpointing: ClassVar[bool] = False  # on during the fine-tune unless the user says otherwise

    @property
    def pipeline_class(self):
        """The diffusers pipeline class that loads this family's checkpoints."""
        import diffusers

        return getattr(diffusers, self.pipeline_classes[0])

    def pipeline_class_for(self, class_name: str | None):
        """The diffusers class that loads a checkpoint whose ``model_index.json`` names ``class_name``."""
        import diffusers

        return getattr(
            diffusers, class_name if class_name in self.pipeline_classes else self.pipeline_classes[0]
        )

    @staticmethod
    def denoiser(pipe) -> torch.nn.Module:
        """The network that is fine-tuned and denoises: the UNet (SD, SDXL) or the transformer (FLUX.1)."""
        return pipe.unet

    def text_encoders(self, pipe) -> list[torch.nn.Module]:
        return [pipe.text_encoder]

    def tokenizers(self, pipe) -> list[Any]:
        """Tokenizers whose length limit a caption must respect (each caption is checked against all)."""
        return [pipe.tokenizer]

    def modules(self, pipe) -> list[torch.nn.Module]:
        """Every model of the pipeline (frozen for our use)."""
        return [self.denoiser(pipe), pipe.vae, *self.text_encoders(pipe)]

    def set_up(self, pipe, ddim: bool, log: Callable[[str], object]):
        """The scheduler the method samples with (``ddim``: DDIM with the model's betas, the paper's), said if changed."""
        if ddim:
            from diffusers import DDIMScheduler

            previous = type(pipe.scheduler).__name__
            pipe.scheduler = DDIMScheduler.from_config(
                pipe.scheduler.config, clip_sample=False, set_alpha_to_one=False
            )
            if previous != "DDIMScheduler":
                log(
                    f"sampling with DDIM (the paper's sampler) instead of the checkpoint's {previous}; "
                    "ImPoster.from_pipe(pipe) keeps a pipeline's own scheduler"
                )
        return pipe

    @staticmethod
    def vae_scale_factor(pipe) -> int:
        """Pixels per latent cell (8 for the real checkpoints)."""
        return 2 ** (len(pipe.vae.config.block_out_channels) - 1)

    def size_multiple(self, pipe) -> int:
        """Image sides must be a multiple of this."""
        return self.vae_scale_factor(pipe)

    def native_size(self, pipe) -> int:
        """The side the denoiser was trained at, in pixels."""
        return int(self.denoiser(pipe).config.sample_size) * self.vae_scale_factor(pipe)

    def latent_channels(self, pipe) -> int:
        return int(pipe.vae.config.latent_channels)

    @abstractmethod
    def encode(self, pipe, prompt: str) -> Conditioning:
        """The conditioning of one caption (1 row), as the family's pipeline computes it."""

    @torch.no_grad()
    def encode_images(self, pipe, images: Sequence[Image.Image]) -> torch.Tensor:
        """VAE latents (N, C, h, w) of the images (the posterior mean, normalized), float32."""
        from ..images import to_tensor

        pixels = to_tensor(images).to(pipe._execution_device, pipe.vae.dtype)
        latents = pipe.vae.encode(pixels).latent_dist.mean.float()
        return (latents - self._shift(pipe)) * pipe.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, pipe, latents: torch.Tensor) -> list[Image.Image]:
        """Images from clean (spatial, normalized) latents."""
        from ..images import to_pil

        scaled = latents / pipe.vae.config.scaling_factor + self._shift(pipe)
        return to_pil(pipe.vae.decode(scaled.to(pipe._execution_device, pipe.vae.dtype)).sample)

    @staticmethod
    def _shift(pipe) -> float:
        return float(getattr(pipe.vae.config, "shift_factor", None) or 0.0)

    @abstractmethod
    def training_loss(self, pipe) -> Any:
        """The fine-tuning loss (a ``families.losses.TrainingLoss`` that reads :class:`Conditioning`)."""

    def save_lora(self, directory, state: dict[str, torch.Tensor]) -> None:
        """Write ``state`` (``lora_prefix``-ed keys) as ``pytorch_lora_weights.safetensors`` in diffusers' format."""
        layers = {k.removeprefix(f"{self.lora_prefix}."): v.contiguous() for k, v in state.items()}
        self.pipeline_class.save_lora_weights(
            directory, **{f"{self.lora_prefix}_lora_layers": layers}, safe_serialization=True
        )

    def noised_start(
        self, pipe, latents: torch.Tensor, noise: torch.Tensor, steps: int, start: int
    ) -> torch.Tensor:
        """Clean ``latents`` noised with ``noise`` to the timestep of step ``start`` of ``steps`` (img2img's
        starting point: ``SamplingPlan.start``), by the sampling scheduler's own forward process."""
        scheduler = pipe.scheduler
        scheduler.set_timesteps(steps, device=noise.device)
        return scheduler.add_noise(latents, noise, scheduler.timesteps[start : start + 1])

    def predict_noise(
        self, pipe, latents: torch.Tensor, timestep: int, conditioning: Conditioning
    ) -> torch.Tensor:
        """The denoiser's raw output at ``timestep`` (UNet families; what DDIM inversion reads)."""
        raise ConfigError(
            f"$driving_inversion (DDIM inversion) works with the UNet families (SD 1.x/2.x, SDXL), not {self.title}; "
            "use $driving_strength alone (img2img from the noised driving image)"
        )

    def inverted_start(
        self, pipe, latents: torch.Tensor, conditioning: Conditioning, steps: int, start: int
    ) -> torch.Tensor:
        """Clean ``latents`` carried by DDIM inversion (``imposter.inversion``) to the timestep of step ``start``
        of ``steps``, reading the denoiser with ``conditioning`` and no classifier-free guidance: img2img's
        starting point (``SamplingPlan.start``) without fresh noise."""
        from ..inversion import ddim_inversion, epsilon
        from ..sampling import alpha_prod_at

        scheduler = pipe.scheduler
        scheduler.set_timesteps(steps, device=latents.device)
        ascending = [int(t) for t in scheduler.timesteps[start:].flip(0)]
        kind = scheduler.config.get("prediction_type", "epsilon")
        rows = conditioning.expand(len(latents))

        def predict(z: torch.Tensor, timestep: int) -> torch.Tensor:
            output = self.predict_noise(pipe, z, timestep, rows).float()
            return epsilon(output, z, alpha_prod_at(scheduler, timestep), kind)

        return ddim_inversion(predict, latents.float(), ascending, lambda t: alpha_prod_at(scheduler, t)).to(
            latents.dtype
        )

    @abstractmethod
    def sample(self, pipe, noise: torch.Tensor, plan: SamplingPlan) -> torch.Tensor:
        """Denoise ``noise`` (B, C, h, w) into clean spatial latents as ``plan`` says."""
