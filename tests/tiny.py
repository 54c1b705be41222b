"""Tiny Stable Diffusion pipelines built in code (no downloads), in the style of diffusers' own tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CHARS = "abcdefghijklmnopqrstuvwxyz"


def tiny_tokenizer(directory: Path, pad_token: str | None = None, max_length: int = 77):
    """A real CLIPTokenizer over single characters (SD 2.x pads with "!": pass ``pad_token="!"``)."""
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


def tiny_components(
    tmp: Path,
    seed: int = 0,
    prediction_type: str = "epsilon",
    pad_token: str | None = None,
    unet_channels: tuple[int, int] = (16, 32),
):
    """UNet, VAE, text encoder, tokenizer and DDIM scheduler, a few thousand parameters each."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=unet_channels,
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
        attention_head_dim=4,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    )
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(tmp / "tokenizer-src", pad_token)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def tiny_pipeline_dir(tmp: Path, **kwargs) -> Path:
    """Save a tiny pipeline with ``save_pretrained`` (safetensors) and return its folder."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        **tiny_components(tmp, **kwargs),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = tmp / "tiny-sd"
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def random_image(path: Path | None = None, size=(64, 64), seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random RGB image (saved to ``path`` if given)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
    if mode != "RGB":
        image = image.convert(mode)
    if path is not None:
        image.save(path)
    return image
