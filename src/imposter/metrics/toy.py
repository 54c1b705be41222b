"""Ground-truth scores in the toy world, where the right output is known exactly.

- ``pose_iou``: IoU of the generated figure's mask with the ground-truth target's mask (the pose).
- ``identity``: color similarity of the generated figure with the source figure, in [0, 1].
- ``leakage``: the same similarity with the driving figure (its appearance leaking into the result).
- ``psnr``: PSNR in dB of the generated image against the target, pixels in [0, 1], capped at 100 dB
  so that a perfect image scores 100 instead of infinity and means stay finite.

The color similarity is the cosine of soft foreground color histograms
(:func:`imposter.toyworld.classify.color_similarity`): it ignores where the colors are, so it does not
depend on the pose; on renders the same subject in two poses scores about 0.99, two subjects at most
about 0.4, and a blurred render against a sharp one of the same subject about 0.8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from imposter.errors import DataError
from imposter.metrics.base import EvalItem, Metric
from imposter.toyworld.classify import color_similarity, figure_mask, mask_iou

PSNR_CAP = 100.0  # dB: the score of an exact match


def psnr(image: Image.Image, reference: Image.Image) -> float:
    """PSNR in dB of ``image`` against ``reference`` (same size), pixels in [0, 1], capped at PSNR_CAP."""
    first = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    second = np.asarray(reference.convert("RGB"), dtype=np.float64) / 255.0
    mse = float(np.mean((first - second) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, -10.0 * math.log10(mse))


def _at_size(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` as RGB at ``size`` (a generated image from a model of another resolution)."""
    image = image.convert("RGB")
    return image if image.size == size else image.resize(size, Image.BILINEAR)


class ToyGroundTruth(Metric):
    """Pose IoU, identity, leakage and PSNR against the toy world's exact ground truth."""

    keys = ("pose_iou", "identity", "leakage", "psnr")
    needs_target = True

    def score(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        """Score each item against its target, source and driving images."""
        return [self._score_one(item) for item in items]

    @staticmethod
    def _score_one(item: EvalItem) -> dict[str, float]:
        if item.target is None:
            raise DataError("the toy ground-truth metric needs EvalItem.target; score toy-world pairs only")
        target = item.target.convert("RGB")
        generated = _at_size(item.generated, target.size)
        return {
            "pose_iou": mask_iou(figure_mask(generated), figure_mask(target)),
            "identity": color_similarity(generated, item.source),
            "leakage": color_similarity(generated, item.driving),
            "psnr": psnr(generated, target),
        }
