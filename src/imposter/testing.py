"""Random-weight pipelines built in code (no downloads), for tests and benchmarks.

Tests use tiny ones (the whole method runs in about a second on a CPU, as in diffusers' own tests);
benchmarks use full-size shapes, since compute does not depend on the weights. Each family has a
section: a frozen dataclass of its sizes, its presets, and ``<family>_components`` returning the
components its diffusers pipeline takes; :data:`PIPELINES` names the pipeline class that assembles
them. A new family (SDXL, FLUX.1) is one more section and one more entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHARS = "abcdefghijklmnopqrstuvwxyz"


def character_tokenizer(directory: Path, pad_token: str | None = None, max_length: int = 77):
    """A real CLIPTokenizer over single characters, its files written to ``directory``.

    SD 2.x pads with "!" instead of the end token: pass ``pad_token="!"`` to build that variant.
    """
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for c in CHARS + "!":
            vocab[c + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    extra = {"pad_token": pad_token} if pad_token else {}
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=max_length, **extra
    )


# --- Stable Diffusion 1.x / 2.x ---


@dataclass(frozen=True)
class SdShape:
    """Sizes of an SD pipeline: UNet, VAE and CLIP text encoder (defaults: the tiny test pipeline)."""

    latent_size: int = 8  # the UNet's sample size; images are latent_size * 2 ** (VAE levels - 1)
    unet_channels: tuple[int, ...] = (16, 32)
    unet_layers_per_block: int = 1
    unet_down_blocks: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D")
    unet_up_blocks: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D")
    attention_head_dim: int | tuple[int, ...] = 4
    use_linear_projection: bool = False  # SD 2.x projects attention inputs with Linear, 1.x with Conv
    unet_norm_groups: int = 8
    vae_channels: tuple[int, ...] = (16, 32)
    vae_layers_per_block: int = 1
    vae_norm_groups: int = 8
    text_hidden: int = 32  # also the UNet's cross-attention width
    text_intermediate: int = 37
    text_layers: int = 2
    text_heads: int = 4
    text_activation: str = "quick_gelu"  # SD 1.x's CLIP; OpenCLIP (SD 2.x) uses gelu


TINY_SD = SdShape()
# stabilityai/stable-diffusion-2-1-base's sizes (its model_index.json and configs), for timing
SD21_BASE = SdShape(
    latent_size=64,
    unet_channels=(320, 640, 1280, 1280),
    unet_layers_per_block=2,
    unet_down_blocks=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    unet_up_blocks=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
    unet_norm_groups=32,
    vae_channels=(128, 256, 512, 512),
    vae_layers_per_block=2,
    vae_norm_groups=32,
    text_hidden=1024,
    text_intermediate=4096,
    text_layers=23,
    text_heads=16,
    text_activation="gelu",
)


def sd_components(
    directory: Path,
    shape: SdShape = TINY_SD,
    seed: int = 0,
    prediction_type: str = "epsilon",
    pad_token: str | None = None,
) -> dict[str, Any]:
    """UNet, VAE, text encoder, tokenizer (files in ``directory``) and SD's DDIM scheduler, random weights.

    Each model is initialised from ``seed`` on its own, so changing one's shape leaves the others' weights.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=shape.latent_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=shape.unet_channels,
        layers_per_block=shape.unet_layers_per_block,
        down_block_types=shape.unet_down_blocks,
        up_block_types=shape.unet_up_blocks,
        cross_attention_dim=shape.text_hidden,
        attention_head_dim=shape.attention_head_dim,
        use_linear_projection=shape.use_linear_projection,
        norm_num_groups=shape.unet_norm_groups,
    )
    torch.manual_seed(seed)
    levels = len(shape.vae_channels)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=shape.vae_channels,
        layers_per_block=shape.vae_layers_per_block,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=4,
        norm_num_groups=shape.vae_norm_groups,
        sample_size=shape.latent_size * 2 ** (levels - 1),
    )
    torch.manual_seed(seed)
    tokenizer = character_tokenizer(directory / "tokenizer-src", pad_token)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=shape.text_hidden,
            intermediate_size=shape.text_intermediate,
            num_hidden_layers=shape.text_layers,
            num_attention_heads=shape.text_heads,
            max_position_embeddings=77,
            hidden_act=shape.text_activation,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
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


# --- every family: which components builder and which diffusers pipeline ---


@dataclass(frozen=True)
class PipelineRecipe:
    """How to build one family's random pipeline: its components, its class, the class's other arguments."""

    components: Callable[..., dict[str, Any]]
    pipeline_class: str  # a class exported by diffusers
    extra: tuple[tuple[str, Any], ...] = ()


PIPELINES = {
    "sd": PipelineRecipe(
        sd_components,
        "StableDiffusionPipeline",
        (("safety_checker", None), ("feature_extractor", None), ("requires_safety_checker", False)),
    ),
}


def random_pipeline(family: str, directory: Path, **options: Any):
    """A ``family`` pipeline with random weights; ``options`` go to its components builder."""
    import diffusers

    recipe = PIPELINES[family]
    pipeline_class = getattr(diffusers, recipe.pipeline_class)
    return pipeline_class(**recipe.components(directory, **options), **dict(recipe.extra))


def save_random_pipeline(family: str, directory: Path, name: str | None = None, **options: Any) -> Path:
    """Save :func:`random_pipeline` (safetensors) to ``directory / name`` and return that folder."""
    folder = directory / (name or f"random-{family}")
    random_pipeline(family, directory, **options).save_pretrained(folder, safe_serialization=True)
    return folder
