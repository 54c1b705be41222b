"""Tiny random metric models built in code and saved like hub checkpoints, so tests load them by path."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imposter.metrics.base import EvalItem


def random_image(seed: int, size: tuple[int, int] = (40, 40)) -> Image.Image:
    """A noise RGB image of the given (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def random_items(count: int, size: tuple[int, int] = (40, 40)) -> list[EvalItem]:
    """Items whose images are all different noise images."""
    return [
        EvalItem(
            generated=random_image(3 * i, size),
            source=random_image(3 * i + 1, size),
            driving=random_image(3 * i + 2, size),
            target_prompt=["a monkey dancing", "a teddy bear playing guitar", "a robot"][i % 3],
        )
        for i in range(count)
    ]


def save_tiny_clip(folder: Path) -> Path:
    """A CLIPModel with 8-wide layers, a character-level BPE tokenizer and a 32-pixel image processor."""
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase:
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 8,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 8,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_dinov2(folder: Path) -> Path:
    """A Dinov2Model (8 wide, 32-pixel crops of 8-pixel patches: 17 tokens) with its BitImageProcessor."""
    from transformers import Dinov2Config, Dinov2Model
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessorPil(
        size={"shortest_edge": 36},
        crop_size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return folder


def save_tiny_dino_vit(folder: Path) -> Path:
    """A DINO v1 style ViTModel without pooler (17 tokens of width 8) with its ViTImageProcessor."""
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


class TinySscd(torch.nn.Module):
    """Conv, global average pool, linear, L2 normalization: the shape of an SSCD descriptor model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=3, stride=4)
        self.project = torch.nn.Linear(8, 6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(images)).mean(dim=(2, 3))
        return torch.nn.functional.normalize(self.project(features), dim=1)


def save_tiny_sscd(path: Path) -> Path:
    """TinySscd scripted with TorchScript and saved to ``path``, as SSCD models are distributed."""
    torch.manual_seed(0)
    torch.jit.script(TinySscd()).save(str(path))
    return path
