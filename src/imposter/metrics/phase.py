"""Phase score: the paper's measure of how well the generated image follows the driving pose.

Computed exactly as the authors' ``eval.py``: both images as RGB floats resized to 512 x 512, a 2D FFT of
each channel, the absolute phase ``|angle(F)|`` of every coefficient, all channels flattened into one
vector, and the cosine similarity of the driving image's vector with the generated image's vector.

Blind spots (read these before comparing methods on this score):

- It has a floor of about 3/4, not 0. The phases of unrelated spectra are close to independent and
  uniform on (-pi, pi], so ``|phase|`` is about uniform on [0, pi]. Two independent such vectors have
  cosine E[xy] / E[x^2] = (pi/2)^2 / (pi^2/3) = 3/4. Measured on the paper's 120 pairs, the driving
  image scores 0.751 against *unrelated* source images and 0.751 against uniform noise. The paper
  reports 0.7529 for ImPoster and 0.7515 for Baseline++, both within that floor: the score does not
  separate the methods.
- ``abs()`` drops the sign of the phase. Negating the phase of a real image rotates it by 180 degrees
  about pixel (0, 0), circularly (``x[-i mod H, -j mod W]``), so that rotated image scores 1.0.
- The phase of a (numerically) zero coefficient is arbitrary. At a power-of-two size a constant image
  has an exactly zero spectrum apart from DC, so its phase vector is all zeros and it scores 0 against
  anything. At other sizes round-off makes those phases random.
- Scaling an image by a positive factor does not change its phase, so brightness and contrast are
  invisible to the score (the authors' divide-by-255 does not matter either).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from imposter.errors import ConfigError
from imposter.metrics.base import EvalItem, Metric

PHASE_SIZE = 512  # the authors resize every image to 512 x 512 before scoring


def _as_float_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(images)
    return tensor if tensor.is_floating_point() else tensor.to(torch.float64)


def phase_spectrum(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``|angle(FFT2)|`` of each channel of channels-last images (N, H, W, C), returned as (N, C, H, W)."""
    # channels first, like the authors, and contiguous: the FFT over the last two axes is faster
    channels_first = _as_float_tensor(images).permute(0, 3, 1, 2).contiguous()
    return torch.fft.fft2(channels_first).angle().abs()


def phase_scores(driving: np.ndarray | torch.Tensor, generated: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Phase score of each pair in two batches of channels-last images (N, H, W, C): float64, shape (N,)."""
    driving, generated = _as_float_tensor(driving), _as_float_tensor(generated)
    if driving.ndim != 4 or driving.shape != generated.shape:
        raise ValueError(
            f"phase_scores needs two (N, H, W, C) batches of one shape, got {tuple(driving.shape)} "
            f"and {tuple(generated.shape)}."
        )
    # float32 sums over 512 x 512 x 3 numbers are off by ~1e-5 (identical images gave 1.00001), so the
    # cosine is taken in float64 on the CPU; a zero phase vector (a constant image) gets cosine 0
    driving_phase = phase_spectrum(driving).flatten(1).to("cpu", torch.float64)
    generated_phase = phase_spectrum(generated).flatten(1).to("cpu", torch.float64)
    return F.cosine_similarity(driving_phase, generated_phase, dim=1, eps=1e-12)


def phase_score(driving: np.ndarray | torch.Tensor, generated: np.ndarray | torch.Tensor) -> float:
    """Phase score of one pair of images, each (H, W) or channels-last (H, W, C)."""
    driving, generated = _as_float_tensor(driving), _as_float_tensor(generated)
    if driving.ndim == 2:
        driving, generated = driving[..., None], generated[..., None]
    return phase_scores(driving[None], generated[None]).item()


def phase_pixels(image: Image.Image, size: int = PHASE_SIZE) -> torch.Tensor:
    """An RGB image as a (size, size, 3) float tensor in [0, 1], resized like the authors (bicubic)."""
    resized = image.convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)


class PhaseScore(Metric):
    """Cosine similarity of the absolute FFT phase of the driving and the generated image."""

    keys = ("phase",)

    def __init__(
        self, device: str | torch.device = "cpu", batch_size: int = 16, size: int = PHASE_SIZE
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        if size < 1:
            raise ConfigError(f"size must be at least 1 pixel, got {size}.")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.size = size

    @torch.no_grad()
    def score(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        scores: list[float] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            driving = torch.stack([phase_pixels(item.driving, self.size) for item in batch])
            generated = torch.stack([phase_pixels(item.generated, self.size) for item in batch])
            scores += phase_scores(driving.to(self.device), generated.to(self.device)).cpu().tolist()
        return [{"phase": value} for value in scores]
