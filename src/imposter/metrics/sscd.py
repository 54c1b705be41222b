"""SSCD score: copy-detection similarity between the source and the generated image.

SSCD (Pizzi et al., CVPR 2022) gives image descriptors trained to match copies of the same image. The
score is the cosine of the source's and the generated image's descriptors. SSCD is published only as
TorchScript files, which the user downloads; there is no default model.

Preprocessing as the authors' ``eval.py``: short side resized to 288 (bilinear, aspect kept), values in
[0, 1], ImageNet mean and std. The authors take ``abs()`` of the cosine; we keep its sign (they differ
only for pairs whose descriptors point apart, i.e. unrelated images).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from imposter.errors import ConfigError, MetricUnavailable
from imposter.metrics.base import SourceSimilarity

SSCD_SHORT_SIDE = 288  # torchvision Resize(288) in the authors' eval.py
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SSCD_HOW_TO = (
    "download a TorchScript SSCD model (for example sscd_disc_mixup.torchscript.pt) from "
    "https://github.com/facebookresearch/sscd-copy-detection and pass its path with $sscd_model PATH"
)


def sscd_preprocess(image: Image.Image, short_side: int = SSCD_SHORT_SIDE) -> torch.Tensor:
    """A (3, H, W) tensor: short side resized to ``short_side`` like torchvision's Resize, normalized."""
    image = image.convert("RGB")
    width, height = image.size
    # torchvision keeps the aspect ratio and truncates the long side
    if width <= height:
        size = (short_side, int(short_side * height / width))
    else:
        size = (int(short_side * width / height), short_side)
    pixels = np.asarray(image.resize(size, Image.BILINEAR), dtype=np.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (torch.from_numpy(pixels).permute(2, 0, 1) - mean) / std


class SscdScore(SourceSimilarity):
    """Cosine similarity between SSCD descriptors of the source and the generated image."""

    keys = ("sscd",)

    def __init__(
        self,
        model_path: str | PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        if model_path is None:
            raise MetricUnavailable(f"no SSCD model given; {SSCD_HOW_TO}.")
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise MetricUnavailable(f"SSCD model file {str(path)!r} does not exist; {SSCD_HOW_TO}.")
        try:
            # SSCD ships only as TorchScript, which torch now marks deprecated
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as error:
            reason = str(error).partition("\n")[0]
            raise MetricUnavailable(
                f"{str(path)!r} is not a TorchScript model ({reason}); {SSCD_HOW_TO}."
            ) from error
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """One SSCD descriptor per image; images of one size are batched together."""
        tensors = [sscd_preprocess(image) for image in images]
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for index, tensor in enumerate(tensors):
            by_size[tuple(tensor.shape)].append(index)
        descriptors: list[torch.Tensor] = [torch.empty(0)] * len(tensors)
        for indices in by_size.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                batch = torch.stack([tensors[i] for i in chunk]).to(self.device)
                for index, descriptor in zip(chunk, self.model(batch).float().cpu(), strict=True):
                    descriptors[index] = descriptor.flatten()
        return torch.stack(descriptors)
