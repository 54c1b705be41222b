"""Body keypoints found in a picture for imposter, by the detector the user names (``--detect-pose``).

- ``openpose``: controlnet_aux's OpenPose body model (people; COCO-18).
- ``rtmpose``: rtmlib's ``Body`` (YOLOX finds the person, RTMPose-m reads COCO-17's joints; ONNX weights,
  no pickles; people). OpenPose's neck is the shoulders' midpoint, as rtmlib's own OpenPose conversion has it.
- ``animal``: rtmlib's ``Animal`` (YOLOX's COCO classes find the animal, ViTPose-B trained on APT-36K reads
  AP-10K's 17 joints: 30 species, four-legged and primates). Its joints map one to one onto ours: the nose is
  the head, the front legs the arms (front paw: wrist), the back legs the legs (back paw: ankle); the eyes
  and the root of the tail are not used. Retargeting a dog into a person's pose stands it on its back legs.
- ``auto``: ``rtmpose``, and ``animal`` where it finds no whole body frame (neck, shoulders, hips) above
  :data:`MIN_SCORE`: each image on its own, so a cat can take a dancer's pose.
- a world's own (:func:`imposter.plugins.register_keypoint_detector`): ``toy``, the toy world's detector of
  its figures.

Each detector is an optional package whose weights come from the internet on first use (the hub, GitHub);
loaded once per process. The most confident figure of the picture is used. For ``pose-control`` the found
joints are drawn as an OpenPose body map (:func:`openpose_map`, the colours controlnet_aux draws), what the
OpenPose ControlNets read; ``openpose`` draws its own.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError, DataError
from .retarget import CORE, OPENPOSE_COCO18, Keypoints, completed, openpose_joints

if TYPE_CHECKING:
    from PIL import Image

DETECTORS = ("openpose", "rtmpose", "animal", "auto")  # built in; plugins add theirs (detector_names)
# OpenPose's body map (controlnet_aux.open_pose.util.draw_bodypose): limbs between COCO-18 joints (1-based),
# a colour each (limbs at 60%), the joints in the same colours; eyes and ears (15-18) we do not have
LIMBS_COCO18 = (
    (2, 3),
    (2, 6),
    (3, 4),
    (4, 5),
    (6, 7),
    (7, 8),
    (2, 9),
    (9, 10),
    (10, 11),
    (2, 12),
    (12, 13),
    (13, 14),
    (2, 1),
)
COLOURS_COCO18 = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
)  # fmt: skip
MIN_SCORE = 0.3  # a joint under this score counts as not found (rtmlib draws its skeletons from 0.3 to 0.5)
# rtmlib Body's COCO-17 order (mmpose's): index -> our name; the neck is derived from the shoulders
COCO17 = {
    0: "head", 5: "left_shoulder", 6: "right_shoulder", 7: "left_elbow", 8: "right_elbow", 9: "left_wrist",
    10: "right_wrist", 11: "left_hip", 12: "right_hip", 13: "left_knee", 14: "right_knee", 15: "left_ankle",
    16: "right_ankle",
}  # fmt: skip
# rtmlib Animal's AP-10K / APT-36K order: index -> our name (0, 1 eyes and 4 root of the tail unused)
ANIMAL17 = {
    2: "head", 3: "neck", 5: "left_shoulder", 6: "left_elbow", 7: "left_wrist", 8: "right_shoulder",
    9: "right_elbow", 10: "right_wrist", 11: "left_hip", 12: "left_knee", 13: "left_ankle", 14: "right_hip",
    15: "right_knee", 16: "right_ankle",
}  # fmt: skip
ANNOTATORS = "lllyasviel/Annotators"  # where controlnet_aux's OpenposeDetector takes its weights from
PACKAGES = {
    "openpose": "pip install controlnet_aux",
    "rtmpose": "pip install rtmlib onnxruntime",
    "animal": "pip install rtmlib onnxruntime",
}


def detector_names() -> tuple[str, ...]:
    """Every ``--detect-pose`` choice: the built-in detectors, then those the plugins register."""
    from .plugins import keypoint_detector_names

    return (*DETECTORS, *keypoint_detector_names())


def _instead(role: str) -> str:
    """What to do without a detection: a run's keypoint file, or (``imposter keypoints``) one by hand."""
    if role in ("source", "driving"):
        return f"pass ${role}_keypoints FILE (OpenPose JSON)"
    return "write its OpenPose JSON by hand (pose_keypoints_2d, COCO-18 order)"


def check_detector(detector: str) -> None:
    if detector not in detector_names():
        raise ConfigError(f"$detect_pose must be one of {', '.join(detector_names())}, got {detector!r}")


def openpose_detector(instead: str):
    """controlnet_aux's OpenPose detector with its weights (optional package; the weights come from the hub),
    loaded once per process; ``instead`` says what to do without it."""
    try:
        from controlnet_aux import OpenposeDetector
    except ImportError as err:
        raise ConfigError(
            f"$detect_pose openpose needs the controlnet_aux package (pip install controlnet_aux; its weights "
            f"come from the hub); or {instead}"
        ) from err
    return _loaded(OpenposeDetector)


@functools.cache
def _loaded(detector_class):
    return detector_class.from_pretrained(ANNOTATORS)


def _rtmlib(kind: str):
    """rtmlib's ``Body`` (``rtmpose``) or ``Animal`` solution on the CPU (ONNX Runtime)."""
    try:
        import rtmlib
    except ImportError as err:
        raise ConfigError(
            f"$detect_pose {kind} needs the rtmlib package ({PACKAGES[kind]}; its ONNX weights come from the "
            "internet on first use); or give the keypoints as OpenPose JSON files"
        ) from err
    return _built(rtmlib.Body if kind == "rtmpose" else rtmlib.Animal)


@functools.cache
def _built(solution):
    """A solution built once per process (its weights are read, or downloaded, when it is built)."""
    return solution(mode="balanced", backend="onnxruntime", device="cpu")


def best_figure(keypoints, scores, table: dict[int, str]) -> dict[str, np.ndarray]:
    """The joints (score >= :data:`MIN_SCORE`) of the figure with the highest mean score, named by ``table``
    (detector index -> our joint); the neck from the shoulders where ``table`` has none."""
    keypoints, scores = np.asarray(keypoints, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if keypoints.ndim != 3 or len(keypoints) == 0:
        return {}
    figure = int(np.argmax(scores.mean(axis=1)))
    points = {
        name: keypoints[figure, index] for index, name in table.items() if scores[figure, index] >= MIN_SCORE
    }
    if "neck" not in table.values() and {"left_shoulder", "right_shoulder"} <= points.keys():
        points["neck"] = (points["left_shoulder"] + points["right_shoulder"]) / 2
    return points


def _openpose_keypoints(image: Image.Image, role: str) -> dict[str, np.ndarray]:
    """The most confident person's joints by controlnet_aux's OpenPose body model (its ``body_estimation``:
    candidate peaks and per-person joint indices in COCO-18 order)."""
    found = openpose_detector(_instead(role))
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    candidate, subset = found.body_estimation(bgr)
    candidate, subset = np.asarray(candidate, dtype=float), np.asarray(subset, dtype=float)
    if subset.ndim != 2 or len(subset) == 0:
        return {}
    person = subset[int(np.argmax(subset[:, -2]))]  # the columns after the 18 joints: total score, count
    flat = []
    for joint in range(18):
        index = int(person[joint])
        flat += [*candidate[index, :2], candidate[index, 2]] if index >= 0 else [0.0, 0.0, 0.0]
    return openpose_joints(flat)


def found_joints(image: Image.Image, detector: str, role: str) -> dict[str, np.ndarray]:
    """What ``detector`` (not ``auto``) finds in ``image``, joints named as ours, nothing guessed."""
    if detector == "openpose":
        return _openpose_keypoints(image, role)
    if detector not in DETECTORS:  # a plugin's
        import importlib

        from .plugins import keypoint_detector

        module, function = keypoint_detector(detector).target.split(":")
        return dict(getattr(importlib.import_module(module), function)(image))
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # rtmlib reads OpenCV's BGR
    keypoints, scores = _rtmlib(detector)(bgr)
    return best_figure(keypoints, scores, COCO17 if detector == "rtmpose" else ANIMAL17)


def detect_keypoints(image: Image.Image, detector: str, role: str) -> tuple[Keypoints, str]:
    """``role``'s body keypoints in ``image`` by ``detector`` (:data:`DETECTORS`), in the image's pixels, the
    joints it missed guessed (:func:`imposter.retarget.complete`, with a warning); and the detector that
    found them (``auto`` says which). One-line error when no body frame is found."""
    check_detector(detector)
    tried = ("rtmpose", "animal") if detector == "auto" else (detector,)
    for name in tried:
        points = found_joints(image, name, role)
        if all(joint in points for joint in CORE):
            return completed(points, f"the {role} image's keypoints ({name})"), name
    raise DataError(
        f"{' then '.join(tried)} found no body (neck, shoulders and hips) in the {role} image; "
        f"{_instead(role)} instead"
    )


def model_detector(model: str, chosen: str | None) -> str | None:
    """The detector a run uses where no file gives the keypoints: ``chosen`` (``--detect-pose``), else the
    named model's own (the toy world's: ``toy``), else None (the method asks for keypoints in one line)."""
    from .plugins import named_model

    named = named_model(str(model))
    return chosen or (named.detector if named is not None else None)


def given_or_detected(given, image: Image.Image, detector: str | None, role: str, log):
    """``given`` keypoints (a file, named joints), else those ``detector`` finds in ``image`` (None: no
    detector, no keypoints)."""
    if given or detector is None:
        return given or None
    return detected(image, detector, role, log)


def detected(image: Image.Image, detector: str, role: str, log) -> Keypoints:
    """:func:`detect_keypoints`, the detector that found them said in ``log``."""
    points, used = detect_keypoints(image, detector, role)
    log(f"{role} keypoints: found by {used}" + (" (auto)" if detector == "auto" else ""))
    return points


def draw_skeleton(image: Image.Image, keypoints: Keypoints, zoom: int = 1) -> Image.Image:
    """``image`` (enlarged ``zoom`` times, nearest) with the skeleton the warp moves drawn over it: the bones
    dark, the joints yellow; for checking a detection before a run."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from .retarget import TREE, with_pelvis

    picture = image.convert("RGB")
    picture = picture.resize((picture.width * zoom, picture.height * zoom), PILImage.NEAREST)
    draw, points = ImageDraw.Draw(picture), with_pelvis(keypoints)
    width = max(1, round(max(picture.size) / 170))
    for parent, child in TREE:
        draw.line([tuple(points[parent] * zoom), tuple(points[child] * zoom)], fill=(20, 20, 20), width=width)
    radius = 1.5 * width
    for x, y in (xy * zoom for xy in points.values()):
        draw.ellipse(
            [x - radius, y - radius, x + radius, y + radius], fill=(250, 250, 0), outline=(20, 20, 20)
        )
    return picture


def openpose_map(keypoints: Keypoints, size: tuple[int, int]) -> Image.Image:
    """``keypoints`` drawn as an OpenPose body map of ``size`` (width, height) on black, as controlnet_aux draws
    one at 512 px (limbs as ellipses 4 px wide, joints as discs of radius 4; scaled with the picture): what an
    OpenPose ControlNet (lllyasviel/control_v11p_sd15_openpose, thibaud/controlnet-openpose-sdxl-1.0) reads."""
    import math

    from PIL import Image as PILImage
    from PIL import ImageDraw

    canvas = PILImage.new("RGB", size, (0, 0, 0))
    draw, scale = ImageDraw.Draw(canvas), max(size) / 512
    stick, radius = max(1.0, 4 * scale), max(1.0, 4 * scale)
    point = {index + 1: np.asarray(keypoints[name], dtype=float) for index, name in OPENPOSE_COCO18.items()}
    for (a, b), colour in zip(LIMBS_COCO18, COLOURS_COCO18, strict=False):
        (x1, y1), (x2, y2) = point[a], point[b]
        middle, half = ((x1 + x2) / 2, (y1 + y2) / 2), math.hypot(x2 - x1, y2 - y1) / 2
        angle = math.atan2(y2 - y1, x2 - x1)
        ellipse = [
            (
                middle[0] + half * math.cos(t) * math.cos(angle) - stick * math.sin(t) * math.sin(angle),
                middle[1] + half * math.cos(t) * math.sin(angle) + stick * math.sin(t) * math.cos(angle),
            )
            for t in np.linspace(0, 2 * math.pi, 36, endpoint=False)
        ]
        draw.polygon(ellipse, fill=tuple(int(c * 0.6) for c in colour))
    for index, colour in zip(range(1, 15), COLOURS_COCO18, strict=True):
        x, y = point[index]
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return canvas
