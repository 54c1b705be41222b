"""The toy world plugs into the core (:mod:`imposter.plugins`): its bundled checkpoints by name, its
ground-truth metric, and the notice for captions outside its vocabulary.

Imported by the core on the first lookup of a model or metric name; it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..metrics.registry import register_metric
from ..plugins import KeypointDetector, NamedModel, register_keypoint_detector, register_model

TOY = "toy"
TOY_FLUX = "toy-flux"
BUNDLED = {TOY: "checkpoint", TOY_FLUX: "checkpoint-flux"}  # --model name -> folder in imposter/toyworld/
REAL_CHECKPOINT = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # what to suggest for a user's own photos
# its images are not photos (CLIP and DINO weights would be fetched from the hub to score them)
DEFAULT_METRICS = ("toy", "phase")


def toy_checkpoint(model: str = TOY) -> Path:
    """Folder of a bundled toy-world pipeline, "toy" (SD) or "toy-flux" (trained by ``imposter toy train``)."""
    return Path(__file__).parent / BUNDLED[model]


def vocabulary_notice(captions: Sequence[str]) -> str | None:
    """One line for captions with words the toy model does not know: what it knows, and what to use instead.

    The toy world's cast is read when called (``imposter.toyworld.world``), so the line follows it.
    """
    from . import world

    known = {word.lower() for word in world.KNOWN_WORDS}
    unknown = sorted({word for text in captions for word in text.lower().split() if word not in known})
    if not unknown:
        return None
    return (
        f"the toy model (the default $model) knows only its world, not {', '.join(map(repr, unknown))}: "
        f"subjects {', '.join(world.SUBJECT_NAMES)}; actions {', '.join(world.ACTIONS)} "
        f"(captions like 'a {world.SUBJECT_NAMES[0]} {world.ACTIONS[0]}'). For your own photos use a real "
        f"checkpoint: $model {REAL_CHECKPOINT}"
    )


register_metric("toy", "imposter.toyworld.metric", "ToyGroundTruth", ground_truth=True)
# the pose ControlNet beside each (controlnet/, read by pose-control alone) is an add-on: retraining it
# leaves every other method's results valid
# the keypoint detector beside it (keypoints/, read by --detect-pose toy) likewise
ADD_ONS = ("controlnet", "keypoints")
# the toy world's own detector finds the joints imposter (the default) needs when a pair gives none
register_model(
    NamedModel(TOY, toy_checkpoint(TOY), DEFAULT_METRICS, vocabulary_notice, add_ons=ADD_ONS, detector="toy")
)
register_model(
    NamedModel(TOY_FLUX, toy_checkpoint(TOY_FLUX), DEFAULT_METRICS, add_ons=ADD_ONS, detector="toy")
)
register_keypoint_detector(
    KeypointDetector("toy", "imposter.toyworld.keypoint_detector:detect_toy_keypoints")
)
