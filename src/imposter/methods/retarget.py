"""Retarget, then render (issue 19, direction 5): the source's own body moved into the driving pose.

``imposter``: the source figure is cut along its skeleton and moved bone by bone into the driving
joint angles at its own bone lengths (:mod:`imposter.retarget`, from both images' body keypoints: OpenPose
JSON, ``--source-keypoints`` / ``--driving-keypoints``); the pretrained model then redraws that picture
from a low noise level with the target caption (img2img at ``--driving-strength``, counted on the
retargeted picture), which heals the seams. The pose comes from the driving skeleton, the body, colours and
marks from the source's own pixels; nothing is fine-tuned, so there is no wait for a LoRA.

Its defaults were chosen on toy world v3's tune split (8 pairs x 2 seeds, keypoints of the renders;
docs/toy-defaults.md): strength 0.1 keeps the warp's pose (0.711 against the warp's 0.721) and instance
(0.709 / 0.748) and adds class (0.829 / 0.789); 0.2, 0.3 and 0.5 lose pose and instance step by step. A
LoRA of the source (the issue's "subject adapter") *lowers* every column at 0.1 (pose -0.027, class
-0.10, instance -0.07): learned on the source's own layout, it pulls the figure back toward it. ImPoster's
amplitude guidance and the source's attention change nothing measurable at these strengths.

``retarget-warp`` is that picture alone through the VAE, no model: the floor the redraw must beat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..config import SamplingConfig
from ..errors import ConfigError
from .imposter import NO_GUIDANCE, ImPosterMethod
from .references import LatentReference, _Reference

if TYPE_CHECKING:
    from ..prepared import PreparedPair

NEEDS_KEYPOINTS = (
    "$method {name} needs the body keypoints of both images: $source_keypoints FILE and $driving_keypoints "
    "FILE (OpenPose JSON, as OpenPose's --write_json or a detector writes; a pairs.csv's source_keypoints "
    "and driving_keypoints columns; imposter toy pairs writes them), or detect them with $detect_pose auto "
    "(people and animals; or openpose, rtmpose, animal); $method imposter-guided needs none"
)
STRENGTH = 0.1  # module docstring: the tune split's best on pose, class and instance at once


def retargeted_latents(pair: PreparedPair, name: str) -> torch.Tensor:
    """The pair's retargeted picture's latents; a one-line error naming the missing keypoints."""
    if pair.retargeted_latents is None:
        raise ConfigError(NEEDS_KEYPOINTS.format(name=name))
    return pair.retargeted_latents


class _NeedsKeypoints:
    name: str
    needs_keypoints = True

    def check_pair(self, pair: PreparedPair) -> None:
        retargeted_latents(pair, self.name)


class RetargetMethod(_NeedsKeypoints, _Reference, ImPosterMethod):
    """The source retargeted into the driving pose, redrawn by the pretrained model from a low noise level."""

    def __init__(self) -> None:
        ImPosterMethod.__init__(
            self,
            "imposter",
            "the source figure retargeted into the driving pose by both images' body keypoints, then img2img "
            "of it with the target prompt; no fine-tune",
            {"k": 0, **NO_GUIDANCE, "source_attention_from": None},
            {"driving_strength": STRENGTH},
        )

    def layout_latents(self, pair: PreparedPair) -> torch.Tensor:
        return retargeted_latents(pair, self.name)

    def held_figure(self, pair: PreparedPair, size: tuple[int, int]) -> torch.Tensor:
        """The moved source's pixels, pooled to latent ``size`` by their maximum: every latent pixel the figure
        touches is held."""
        retargeted_latents(pair, self.name)
        figure = torch.as_tensor(pair.retargeted_figure, dtype=torch.float32)[:, None]
        return torch.nn.functional.adaptive_max_pool2d(figure, tuple(size))


class RetargetWarp(_NeedsKeypoints, LatentReference):
    """The retargeted picture itself through the VAE: no model, the floor of ``imposter``."""

    def __init__(self) -> None:
        super().__init__(
            "retarget-warp",
            "reference: the source figure retargeted into the driving pose by its keypoints, no model",
            None,
        )

    def latents(self, pair: PreparedPair, sampling: SamplingConfig) -> torch.Tensor:
        return retargeted_latents(pair, self.name)


def method(name: str) -> Any:
    """``imposter`` (retarget, then render) or ``retarget-warp`` by name."""
    return RetargetWarp() if name == "retarget-warp" else RetargetMethod()
