"""The toy world's FLUX.1 pipeline: FLUX.1's classes (``FluxPipeline``), sized for a laptop CPU.

A rectified-flow ``FluxTransformer2DModel`` over the 8x8 = 64 patch tokens of 4x16x16 latents (16 features
each), conditioned on a small T5 encoder's sequence output (word-level T5 tokenizer over the world's
vocabulary) and on CLIP's pooled output. The VAE and the CLIP text encoder and tokenizer are the bundled SD
toy model's (frozen; the VAE gets ``shift_factor`` 0.0, which ``FluxPipeline`` adds when decoding), so the
two toy models see the same latents and the same classifier reads both. No guidance embedding: like
FLUX.1-schnell it samples conditional-only, without classifier-free guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .world import VOCABULARY


@dataclass(frozen=True)
class ToyFluxConfig:
    """Sizes of the toy FLUX.1 transformer and T5; chosen so training fits an hour on one CPU thread."""

    double_layers: int = 2  # double-stream (MMDiT) blocks
    single_layers: int = 4
    heads: int = 4
    head_dim: int = 32
    rope_axes: tuple[int, ...] = (4, 14, 14)  # sums to head_dim; FLUX.1: (16, 56, 56) of 128
    t5_width: int = 64  # the transformer's joint_attention_dim
    t5_layers: int = 2
    t5_heads: int = 4
    t5_kv: int = 16
    t5_ff: int = 128
    max_length: int = 16  # T5 tokens per caption, </s> included (captions have at most 7 words)
    # Euler sigmas shifted by sigma' = shift sigma / (1 + (shift - 1) sigma). FLUX.1-dev shifts by the image's
    # token count (mu = 0.47 for 64 tokens: a shift of 1.6); SD3 scales its shift by sqrt(tokens / 256) from
    # 1 at 256 tokens (0.5 here). 1.0, no shift, sits between them and matches the uniform training timesteps.
    shift: float = 1.0

    def shape(self):
        """These sizes as the shared builders take them (``imposter.testing_families.FluxShape``)."""
        from ..testing import FluxShape

        return FluxShape(
            layers=self.double_layers,
            single_layers=self.single_layers,
            head_dim=self.head_dim,
            heads=self.heads,
            rope_axes=self.rope_axes,
            t5_width=self.t5_width,
            t5_kv=self.t5_kv,
            t5_ff=self.t5_ff,
            t5_layers=self.t5_layers,
            t5_heads=self.t5_heads,
            t5_feed_forward="gated-gelu",  # T5 v1.1, as FLUX.1's T5-XXL
        )


def build_t5_tokenizer(config: ToyFluxConfig = ToyFluxConfig()):
    """A word-level T5 tokenizer (pad 0, </s> 1, unknown 2) over the toy vocabulary."""
    from ..testing import t5_tokenizer
    from .model import article_normalizer

    tokenizer = t5_tokenizer(tuple(VOCABULARY), max_length=config.max_length)
    tokenizer.backend_tokenizer.normalizer = article_normalizer()
    return tokenizer


def build_flux_components(base: str | Path, config: ToyFluxConfig = ToyFluxConfig()) -> dict:
    """FluxPipeline components: the SD toy pipeline in ``base``'s VAE and CLIP text encoder and tokenizer,
    a fresh (randomly initialised) transformer and T5; seed torch before calling for reproducibility."""
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusionPipeline

    from ..testing import flux_transformer, t5_encoder

    sd = StableDiffusionPipeline.from_pretrained(
        base, safety_checker=None, requires_safety_checker=False, local_files_only=True
    )
    vae = sd.vae
    vae.register_to_config(shift_factor=0.0)
    tokenizer_2 = build_t5_tokenizer(config)
    shape = config.shape()
    text_encoder_2 = t5_encoder(
        shape,
        tokenizer_2,
        dropout_rate=0.0,  # T5's default 0.1 draws from the global RNG: a resumed run would differ
        pad_token_id=tokenizer_2.pad_token_id,
        eos_token_id=tokenizer_2.eos_token_id,
    )
    transformer = flux_transformer(shape, vae.config.latent_channels, sd.text_encoder.config.hidden_size)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=config.shift, use_dynamic_shifting=False)
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=sd.text_encoder,
        tokenizer=sd.tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        scheduler=scheduler,
    )


def assemble_flux_pipeline(components: dict):
    """A FluxPipeline from the components."""
    from diffusers import FluxPipeline

    return FluxPipeline(**components)
