"""Ground-truth scores in the toy world, where the right output is known exactly.

- ``pose_iou``: IoU of the generated figure's mask with the ground-truth target's mask (the pose).
- ``subject``: the probability the world's classifier (:mod:`imposter.toyworld.classifier`, our DINO:
  it sees head shape, accessories and proportions) gives the source's class.
- ``instance``: how much of *this* source instance the image shows, 0 to 1: the probability, from the
  classifier's instance embedding, that the image shows the source's instance rather than one of 31
  other instances of its class (:func:`imposter.toyworld.classifier.instance_scores`; chance 0.031).
  A model that draws "a dog" from its caption alone scores near chance; the source itself near 1.
- ``leakage``: the classifier's probability of the driving subject's class (its body leaking in).
- ``identity``: color similarity of the generated figure with the source figure, in [0, 1].
- ``colour_leakage``: the same color similarity with the driving figure.
- ``psnr``: PSNR in dB of the generated image against the target, pixels in [0, 1], capped at 100 dB
  so that a perfect image scores 100 instead of infinity and means stay finite.

The color similarity is the cosine of soft foreground color histograms
(:func:`imposter.toyworld.figures.color_similarity`): it ignores where the colors are and what shape
they take, so a render in the source's colours with another subject's head and accessories scores as
the source; ``subject`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from imposter.errors import DataError
from imposter.metrics.base import EvalItem, Metric
from imposter.toyworld.figures import color_similarity, figure_mask, mask_iou

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
    """Pose IoU, subject, instance, leakage, colour identity and PSNR against the toy world's exact ground truth."""

    keys = ("pose_iou", "subject", "instance", "leakage", "identity", "colour_leakage", "psnr")
    needs_target = True

    def __init__(self, classifier_folder: str | Path | None = None):
        """``classifier_folder``: a toy pipeline folder with its ``classifier/`` (default: the bundled one)."""
        from imposter.toyworld.classifier import load_classifier

        self.classifier = load_classifier(classifier_folder)

    def score(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        """Score each item against its target, source and driving images."""
        from imposter.toyworld.classifier import instance_scores, outputs

        if any(item.target is None for item in items):
            raise DataError("the toy ground-truth metric needs EvalItem.target; score toy-world pairs only")
        generated = [_at_size(item.generated, item.target.size) for item in items]
        images = generated + [item.source for item in items] + [item.driving for item in items]
        subject_probs, _, embeddings = outputs(self.classifier, images)
        n = len(items)
        source_classes = subject_probs[n : 2 * n].argmax(-1)  # who the source and driving images show
        driving_classes = subject_probs[2 * n :].argmax(-1)
        instance = instance_scores(self.classifier, embeddings[:n], embeddings[n : 2 * n], source_classes)
        scores = []
        for k, (item, image) in enumerate(zip(items, generated, strict=True)):
            target = item.target.convert("RGB")
            scores.append(
                {
                    "pose_iou": mask_iou(figure_mask(image), figure_mask(target)),
                    "subject": float(subject_probs[k, source_classes[k]]),
                    "instance": float(instance[k]),
                    "leakage": float(subject_probs[k, driving_classes[k]]),
                    "identity": color_similarity(image, item.source),
                    "colour_leakage": color_similarity(image, item.driving),
                    "psnr": psnr(image, target),
                }
            )
        return scores
