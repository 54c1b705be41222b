"""Random SDXL pipelines: SD's UNet with text-time additions, two CLIP text encoders, Euler.

The tiny shape follows diffusers' fast test (``get_dummy_components`` in
tests/pipelines/stable_diffusion_xl/test_stable_diffusion_xl.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .parts import BIG_VAE, CLIP_L, ClipShape, clip_text_encoder, clip_tokenizer, random_vae
from .sd import SdShape, sd_unet


@dataclass(frozen=True)
class SdxlShape(SdShape):
    """Sizes of an SDXL pipeline (defaults: the tiny test pipeline, after diffusers' fast SDXL test)."""

    unet_channels: tuple[int, ...] = (8, 16)
    attention_head_dim: int | tuple[int, ...] = (2, 4)
    use_linear_projection: bool = True
    text: ClipShape = ClipShape()  # CLIP ViT-L in SDXL
    transformer_layers: tuple[int, ...] = (1, 2)
    time_embed_dim: int = 8  # addition_time_embed_dim: each of the 6 time ids is embedded this wide
    text_2: ClipShape = ClipShape()  # OpenCLIP ViT-bigG in SDXL, with its projection


TINY_SDXL = SdxlShape()
# stabilityai/stable-diffusion-xl-base-1.0: unet/config.json (block_out_channels 320/640/1280, attention_head_dim
# 5/10/20, transformer_layers_per_block 1/2/10, addition_time_embed_dim 256, cross_attention_dim 2048,
# projection_class_embeddings_input_dim 2816, sample_size 128), vae/config.json (128/256/512/512, 2 layers),
# text_encoder (CLIP ViT-L/14: 768 wide, 12 layers) and text_encoder_2 (OpenCLIP bigG: 1280 wide, 32 layers,
# 20 heads, projection 1280) config.json files
SDXL_BASE = SdxlShape(
    latent_size=128,
    unet_channels=(320, 640, 1280),
    layers_per_block=2,
    down_blocks=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_blocks=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20),
    transformer_layers=(1, 2, 10),
    time_embed_dim=256,
    norm_groups=32,
    vae=BIG_VAE,
    text=CLIP_L,
    text_2=ClipShape(hidden=1280, intermediate=5120, layers=32, heads=20, activation="gelu", projection=1280),
)


def sdxl_components(
    directory: Path, shape: SdxlShape = TINY_SDXL, seed: int = 0, device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """UNet (text_time additions), VAE, two CLIP text encoders and tokenizers, Euler scheduler: an SDXL.

    ``device``: where the models are built ("meta": shapes only, to count parameters).
    """
    from diffusers import EulerDiscreteScheduler

    with torch.device(device):
        torch.manual_seed(seed)
        unet = sd_unet(
            shape,
            shape.text.hidden + shape.text_2.hidden,  # both encoders' states side by side
            addition_embed_type="text_time",
            addition_time_embed_dim=shape.time_embed_dim,
            transformer_layers_per_block=shape.transformer_layers,
            # the 6 time ids embedded, then text_encoder_2's projection
            projection_class_embeddings_input_dim=6 * shape.time_embed_dim + shape.text_2.projection,
        )
        torch.manual_seed(seed)
        vae = random_vae(shape.vae)
        tokenizer = clip_tokenizer(directory / "tokenizer-src", pad_token=shape.pad_token)
        torch.manual_seed(seed)
        text_encoder = clip_text_encoder(tokenizer, shape.text)
        torch.manual_seed(seed + 1)
        text_encoder_2 = clip_text_encoder(tokenizer, shape.text_2, with_projection=True)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=scheduler,
    )
