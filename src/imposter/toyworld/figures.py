"""Read a toy image back: the figure's mask (the pose) and its colours.

Which subject and which action an image shows is the classifier's job (:mod:`.classifier`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from imposter.toyworld.world import BACKGROUND

MASK_THRESHOLD = 40  # a pixel is figure when some channel differs from the background by more than this
COLOR_BINS = 6  # per channel; soft (trilinear) binning makes the histogram continuous in the colors


def _rgb_array(image: Image.Image) -> np.ndarray:
    """The image as an (H, W, 3) int16 array."""
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def figure_mask(image: Image.Image) -> np.ndarray:
    """Boolean (H, W) mask of the pixels that are not background."""
    return (np.abs(_rgb_array(image) - np.array(BACKGROUND, dtype=np.int16)).max(axis=-1)) > MASK_THRESHOLD


def color_histogram(image: Image.Image) -> np.ndarray:
    """Normalized soft histogram (COLOR_BINS**3) of the figure's colors; all zeros for an empty figure."""
    colors = _rgb_array(image)[figure_mask(image)].astype(np.float64) / 255.0 * (COLOR_BINS - 1)
    low = np.minimum(np.floor(colors).astype(np.int64), COLOR_BINS - 2)
    frac = colors - low
    histogram = np.zeros(COLOR_BINS**3)
    for corner in range(8):
        offset = np.array([(corner >> k) & 1 for k in range(3)])
        weight = np.prod(np.where(offset == 1, frac, 1.0 - frac), axis=1)
        index = low + offset
        flat = (index[:, 0] * COLOR_BINS + index[:, 1]) * COLOR_BINS + index[:, 2]
        histogram += np.bincount(flat, weights=weight, minlength=COLOR_BINS**3)
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def histogram_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Cosine of two color histograms: 1 for the same color proportions, 0 for no shared colors (or none).

    Blur spreads a little mass over many small in-between bins; the cosine, dominated by the large bins
    (the subject's own colors), hardly moves, where a histogram intersection would lose all that mass.
    """
    norm = float(np.linalg.norm(first) * np.linalg.norm(second))
    return float(first @ second) / norm if norm > 0 else 0.0


def color_similarity(first: Image.Image, second: Image.Image) -> float:
    """How alike the figures' colors are, in [0, 1], independent of pose (see :func:`color_histogram`)."""
    return histogram_similarity(color_histogram(first), color_histogram(second))


def mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0
