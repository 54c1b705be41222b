"""Random Stable Diffusion 1.x / 2.x pipelines: UNet, VAE, one CLIP text encoder, DDIM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .parts import ClipShape, VaeShape, clip_text_encoder, clip_tokenizer, random_vae


@dataclass(frozen=True)
class SdShape:
    """Sizes of an SD pipeline: UNet, VAE and CLIP text encoder (defaults: the tiny test pipeline)."""

    latent_size: int = 8  # the UNet's sample size; images are latent_size * 2 ** (VAE levels - 1)
    unet_channels: tuple[int, ...] = (16, 32)
    layers_per_block: int = 1
    down_blocks: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D")
    up_blocks: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D")
    attention_head_dim: int | tuple[int, ...] = 4
    use_linear_projection: bool = False  # SD 2.x projects attention inputs with Linear, 1.x with Conv
    norm_groups: int = 8
    vae: VaeShape = VaeShape()
    text: ClipShape = ClipShape(activation="quick_gelu", projection=None)  # OpenCLIP (SD 2.x) uses gelu
    pad_token: str | None = None  # SD 2.x pads with "!" instead of the end token


TINY_SD = SdShape()
# stabilityai/stable-diffusion-2-1-base's sizes (its model_index.json and configs), for timing
SD21_BASE = SdShape(
    latent_size=64,
    unet_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    down_blocks=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_blocks=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
    norm_groups=32,
    vae=VaeShape(channels=(128, 256, 512, 512), layers_per_block=2, norm_groups=32, image_size=512),
    text=ClipShape(hidden=1024, intermediate=4096, layers=23, heads=16, activation="gelu", projection=None),
    pad_token="!",
)


def sd_unet(shape: SdShape, cross_attention_dim: int, **options):
    """A random ``UNet2DConditionModel`` of ``shape`` over 4-channel latents; ``options`` add to its config."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=shape.latent_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=shape.unet_channels,
        layers_per_block=shape.layers_per_block,
        down_block_types=shape.down_blocks,
        up_block_types=shape.up_blocks,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=shape.attention_head_dim,
        use_linear_projection=shape.use_linear_projection,
        norm_num_groups=shape.norm_groups,
        **options,
    )


def sd_components(
    directory: Path,
    shape: SdShape = TINY_SD,
    seed: int = 0,
    device: str | torch.device = "cpu",
    prediction_type: str = "epsilon",
) -> dict[str, Any]:
    """UNet, VAE, text encoder, tokenizer (files in ``directory``) and SD's DDIM scheduler, random weights.

    Each model is initialised from ``seed`` on its own, so changing one's shape leaves the others' weights.
    ``device``: where the models are built ("meta": shapes only, to count parameters).
    """
    from diffusers import DDIMScheduler

    with torch.device(device):
        torch.manual_seed(seed)
        unet = sd_unet(shape, shape.text.hidden)
        torch.manual_seed(seed)
        vae = random_vae(shape.vae)
        torch.manual_seed(seed)
        tokenizer = clip_tokenizer(directory / "tokenizer-src", words=(), pad_token=shape.pad_token)
        text_encoder = clip_text_encoder(tokenizer, shape.text)
    scheduler = DDIMScheduler(  # the scheduler the paper samples with, as SD ships it
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
