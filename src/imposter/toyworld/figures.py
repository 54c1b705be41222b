"""Read a toy image back: the figure mask, which subject it shows and which action it performs.

Both classifiers are nearest-neighbour rules against renders made once (and cached):
- subject: foreground color histograms (:func:`color_histogram`), compared by their cosine;
- action: figure masks of each action's mean pose and of a few jittered poses, compared by IoU after
  moving both masks' centroids to the image center (position jitter then does not matter).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from imposter.toyworld.render import render
from imposter.toyworld.world import ACTIONS, BACKGROUND, SUBJECT_NAMES, SUBJECTS, Pose, mean_pose, sample_pose

MASK_THRESHOLD = 40  # a pixel is figure when some channel differs from the background by more than this
COLOR_BINS = 6  # per channel; soft (trilinear) binning makes the histogram continuous in the colors
TEMPLATE_SEED = 20240923  # renders behind the classifiers; tests use other seeds
TEMPLATES_PER_ACTION = (
    24  # the mean pose plus jittered ones, drawn on the subjects in turn (accessories vary)
)
STANDING = "standing"


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


def _template_poses() -> list[tuple[str, int, Pose]]:
    """(label, index within the label, pose) of every template; index 0 is the mean pose."""
    rng = np.random.default_rng(TEMPLATE_SEED)
    return [
        (label, k, mean_pose(label) if k == 0 else sample_pose(label, rng))
        for label in (STANDING, *ACTIONS)
        for k in range(TEMPLATES_PER_ACTION)
    ]


@lru_cache(maxsize=1)
def _subject_references() -> np.ndarray:
    """(n_subjects, bins) mean color histogram of each subject over every action's template poses."""
    poses = [pose for _, k, pose in _template_poses() if k < 2]  # mean and one jittered pose per label
    return np.stack([np.mean([color_histogram(render(s, p)) for p in poses], axis=0) for s in SUBJECTS])


def _centered(mask: np.ndarray) -> np.ndarray:
    """The mask shifted (zero fill) so that its centroid sits at the image center."""
    if not mask.any():
        return mask
    ys, xs = np.nonzero(mask)
    shift_y = int(round(mask.shape[0] / 2 - ys.mean()))
    shift_x = int(round(mask.shape[1] / 2 - xs.mean()))
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -shift_y) : h - max(0, shift_y), max(0, -shift_x) : w - max(0, shift_x)]
    out[
        max(0, shift_y) : max(0, shift_y) + src.shape[0], max(0, shift_x) : max(0, shift_x) + src.shape[1]
    ] = src
    return out


@lru_cache(maxsize=1)
def _action_templates() -> tuple[np.ndarray, tuple[str, ...]]:
    """Centered template masks (N, 64, 64) and their labels."""
    items = _template_poses()
    masks = np.stack(
        [_centered(figure_mask(render(SUBJECTS[k % len(SUBJECTS)], pose))) for _, k, pose in items]
    )
    return masks, tuple(label for label, _, _ in items)


def mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


def action_scores(image: Image.Image) -> dict[str, float]:
    """Best centered-mask IoU of the image against each label's templates (standing and every action)."""
    masks, labels = _action_templates()
    query = _centered(figure_mask(image))
    inter = np.logical_and(masks, query).sum(axis=(1, 2))
    union = np.logical_or(masks, query).sum(axis=(1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    scores: dict[str, float] = {}
    for label, value in zip(labels, iou, strict=True):
        scores[label] = max(scores.get(label, 0.0), float(value))
    return scores


def classify_action(image: Image.Image) -> str:
    """The action (or "standing") whose template silhouette best overlaps the image's figure."""
    scores = action_scores(image)
    return max(scores, key=scores.__getitem__)


def classify_subject(image: Image.Image) -> str:
    """The subject whose reference color histogram is most like the image's (:func:`histogram_similarity`)."""
    histogram = color_histogram(image)
    similarities = [histogram_similarity(reference, histogram) for reference in _subject_references()]
    return SUBJECT_NAMES[int(np.argmax(similarities))]
