"""Random FLUX.1 pipelines: an MMDiT transformer, a 16- (tiny: 4-) channel VAE, CLIP and T5, flow matching.

The tiny shape follows diffusers' fast test (``get_dummy_components`` in tests/pipelines/flux/test_pipeline_flux.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .parts import (
    BIG_VAE,
    CLIP_L,
    ClipShape,
    VaeShape,
    clip_text_encoder,
    clip_tokenizer,
    random_vae,
    t5_tokenizer,
)


@dataclass(frozen=True)
class FluxShape:
    """Sizes of a FLUX.1 pipeline (defaults: the tiny test pipeline, after diffusers' fast FLUX test)."""

    layers: int = 1  # double-stream (MMDiT) blocks
    single_layers: int = 1
    head_dim: int = 16
    heads: int = 2
    rope_axes: tuple[int, ...] = (4, 4, 8)  # sums to head_dim
    vae: VaeShape = VaeShape()
    clip: ClipShape = ClipShape()  # pooled_projection_dim is its width
    t5_width: int = 32  # joint_attention_dim
    t5_kv: int = 8
    t5_ff: int = 37
    t5_layers: int = 2
    t5_heads: int = 4
    t5_feed_forward: str = "relu"


TINY_FLUX = FluxShape()
# black-forest-labs/FLUX.1-dev: transformer/config.json (num_layers 19, num_single_layers 38, attention_head_dim
# 128, num_attention_heads 24, joint_attention_dim 4096, pooled_projection_dim 768, axes_dims_rope 16/56/56,
# in_channels 64), vae/config.json (latent_channels 16, 128/256/512/512), text_encoder (CLIP ViT-L/14) and
# text_encoder_2 (T5 v1.1 XXL: d_model 4096, d_kv 64, d_ff 10240, 24 layers, 64 heads, gated-gelu) config.json
FLUX_DEV = FluxShape(
    layers=19,
    single_layers=38,
    head_dim=128,
    heads=24,
    rope_axes=(16, 56, 56),
    vae=replace(BIG_VAE, latent_channels=16),
    clip=CLIP_L,
    t5_width=4096,
    t5_kv=64,
    t5_ff=10240,
    t5_layers=24,
    t5_heads=64,
    t5_feed_forward="gated-gelu",
)


def flux_transformer(
    shape: FluxShape, latent_channels: int, pooled_width: int, guidance_embeds: bool = False
):
    """A random ``FluxTransformer2DModel`` of ``shape`` over 2x2 patches of ``latent_channels`` latents."""
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * latent_channels,  # one 2x2 patch of latents per token
        num_layers=shape.layers,
        num_single_layers=shape.single_layers,
        attention_head_dim=shape.head_dim,
        num_attention_heads=shape.heads,
        joint_attention_dim=shape.t5_width,
        pooled_projection_dim=pooled_width,
        axes_dims_rope=shape.rope_axes,
        guidance_embeds=guidance_embeds,
    )


def t5_encoder(shape: FluxShape, tokenizer, **options):
    """A random ``T5EncoderModel`` of ``shape``'s T5 sizes over ``tokenizer``; ``options`` go to ``T5Config``."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=shape.t5_width,
            d_kv=shape.t5_kv,
            d_ff=shape.t5_ff,
            num_layers=shape.t5_layers,
            num_heads=shape.t5_heads,
            feed_forward_proj=shape.t5_feed_forward,
            **options,
        )
    )


def flux_components(
    directory: Path,
    shape: FluxShape = TINY_FLUX,
    seed: int = 0,
    device: str | torch.device = "cpu",
    guidance_embeds: bool = True,
) -> dict[str, Any]:
    """Transformer, VAE, CLIP + T5 text encoders and tokenizers, flow-matching scheduler: a FLUX.1.

    ``guidance_embeds``: True is FLUX.1-dev's distilled guidance embedding (and FLUX.1-Kontext-dev's);
    False is FLUX.1-schnell. ``device``: where the models are built ("meta": shapes only, to count parameters).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    with torch.device(device):
        torch.manual_seed(seed)
        transformer = flux_transformer(shape, shape.vae.latent_channels, shape.clip.hidden, guidance_embeds)
        torch.manual_seed(seed)
        # diffusers' dummy FLUX VAE: no quant convs, a shift and a scale (FLUX.1's own are 0.1159, 0.3611)
        vae = random_vae(
            shape.vae,
            use_quant_conv=False,
            use_post_quant_conv=False,
            shift_factor=0.0609,
            scaling_factor=1.5035,
        )
        tokenizer = clip_tokenizer(directory / "tokenizer-src")
        torch.manual_seed(seed)
        text_encoder = clip_text_encoder(tokenizer, shape.clip)
        tokenizer_2 = t5_tokenizer()
        torch.manual_seed(seed)
        text_encoder_2 = t5_encoder(shape, tokenizer_2)
    # FLUX.1-dev's scheduler config: resolution-dependent shift (mu) at sampling, unshifted sigmas in training
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=scheduler,
    )
