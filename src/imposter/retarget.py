"""Retarget, then render (issue 19, direction 5): the source's own body, moved into the driving pose.

Pure functions on 2D keypoints and images, no model. Systems that transfer pose across body proportions
retarget the driving skeleton to the reference's bone lengths first (Animate Anyone, Animate-X; users of
MimicMotion and DynamicPose report the driver's proportions imposed on a child or a cat without it). Here:

1. :func:`retarget` keeps the driving skeleton's bone *directions* and takes the source's bone *lengths*,
   walking the tree from the pelvis, so the result is the source's body in the driving joint angles;
2. :func:`warp` moves the source image's figure pixels bone by bone (each pixel rides the bone it belongs
   to, rigidly: rotation and translation, as linear blend skinning with hard weights), front parts over
   back ones, onto a flat background;
3. the base model redraws that picture from a low noise level (the ``imposter`` method,
   :mod:`imposter.methods.retarget`): the warp brings the pose and the source's own pixels, the model
   heals the seams.

Keypoints are OpenPose's body joints, named (:data:`JOINTS`; OpenPose's nose stands for the head);
:func:`from_openpose` reads an OpenPose JSON person. Coordinates are pixels ``(x, y)``, y down.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError, ImposterWarning

JOINTS = (
    "head", "neck", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
    "right_wrist", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
)  # fmt: skip
ROOT = "pelvis"  # the midpoint of the hips, derived
# The kinematic tree, parent -> child, walked from the pelvis (every parent before its children); the
# shoulders and hips hang on it rigidly (:func:`retarget`).
TREE: tuple[tuple[str, str], ...] = (
    ("pelvis", "neck"), ("neck", "head"),
    ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("pelvis", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("pelvis", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)  # fmt: skip
# The rigid parts the warp moves, front to back (what is drawn over what): head, arms, torso, legs.
PARTS: tuple[tuple[str, str], ...] = (
    ("neck", "head"),
    ("right_elbow", "right_wrist"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("left_shoulder", "left_elbow"),
    ("pelvis", "neck"),
    ("right_knee", "right_ankle"), ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"), ("left_hip", "left_knee"),
)  # fmt: skip
HEAD = ("neck", "head")
# OpenPose's COCO-18 body order (controlnet_aux, the OpenPose JSON "pose_keypoints_2d"): index -> our name.
OPENPOSE_COCO18 = {
    0: "head", 1: "neck", 2: "right_shoulder", 3: "right_elbow", 4: "right_wrist", 5: "left_shoulder",
    6: "left_elbow", 7: "left_wrist", 8: "right_hip", 9: "right_knee", 10: "right_ankle", 11: "left_hip",
    12: "left_knee", 13: "left_ankle",
}  # fmt: skip

Keypoints = dict[str, np.ndarray]  # joint name -> (x, y) in pixels


def with_pelvis(keypoints: Mapping[str, np.ndarray], where: str = "keypoints") -> Keypoints:
    """The keypoints as float arrays, with the pelvis (the hips' midpoint) added; a one-line error naming
    what is missing."""
    missing = [name for name in JOINTS if name not in keypoints]
    if missing:
        raise DataError(
            f"{where} lack {', '.join(missing)}: retargeting needs every body joint (OpenPose's first 14 "
            "of COCO-18, nose to left ankle); detect them on a picture where the whole body shows"
        )
    points = {name: np.asarray(keypoints[name], dtype=np.float64) for name in JOINTS}
    points[ROOT] = (points["left_hip"] + points["right_hip"]) / 2
    return points


CORE = ("neck", "left_shoulder", "right_shoulder", "left_hip", "right_hip")  # the body's frame: never guessed
LIMBS = {  # side -> chains (root, middle, end); the other side's lengths stand in for a missing one's
    side: (
        (f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"),
        (f"{side}_hip", f"{side}_knee", f"{side}_ankle"),
    )
    for side in ("left", "right")
}
LIMB_SHARE = 0.6  # a limb segment's length as a share of the spine (neck to pelvis), when no side shows it


def complete(keypoints: Mapping[str, np.ndarray], where: str = "keypoints") -> tuple[Keypoints, list[str]]:
    """The keypoints with the joints a detector missed guessed, and the names guessed.

    Real detectors miss a wrist or an ankle that is hidden or cut off. The body's frame (:data:`CORE`) is
    needed; a missing elbow or knee between two found joints goes midway; a missing hand or foot continues
    its upper bone; a limb with nothing found hangs down along the spine; lengths come from the other side
    where it shows, else :data:`LIMB_SHARE` of the spine. The head, if missing, sits half a spine above the
    neck. The warp then moves those parts by the guess: better one wrong forearm than no picture.
    """
    missing = [name for name in CORE if name not in keypoints]
    if missing:
        raise DataError(
            f"{where} lack {', '.join(missing)}: retargeting needs at least the neck, shoulders and hips "
            "(OpenPose's COCO-18 joints 1, 2, 5, 8, 11); detect them on a picture where the body shows"
        )
    points = {name: np.asarray(xy, dtype=np.float64) for name, xy in keypoints.items() if name in JOINTS}
    pelvis = (points["left_hip"] + points["right_hip"]) / 2
    spine = points["neck"] - pelvis
    down = -spine / max(float(np.linalg.norm(spine)), 1e-9)
    guessed = [name for name in JOINTS if name not in points]
    if "head" not in points:
        points["head"] = points["neck"] + spine / 2
    for side, chains in LIMBS.items():
        other = "right" if side == "left" else "left"
        for root, middle, end in chains:
            mirror = [name.replace(side, other, 1) for name in (root, middle, end)]
            lengths = []
            for a, b, ma, mb in ((root, middle, *mirror[:2]), (middle, end, *mirror[1:])):
                if a in keypoints and b in keypoints:
                    lengths.append(float(np.linalg.norm(points[b] - points[a])))
                elif ma in keypoints and mb in keypoints:
                    lengths.append(float(np.linalg.norm(points[mb] - points[ma])))
                else:
                    lengths.append(LIMB_SHARE * float(np.linalg.norm(spine)))
            if middle not in points and end in points:
                points[middle] = (points[root] + points[end]) / 2
            if middle not in points:
                points[middle] = points[root] + down * lengths[0]
            if end not in points:
                upper = points[middle] - points[root]
                norm = float(np.linalg.norm(upper))
                points[end] = points[middle] + (upper / norm if norm > 1e-9 else down) * lengths[1]
    return with_pelvis(points, where), guessed


def completed(keypoints: Mapping[str, np.ndarray], where: str = "keypoints") -> Keypoints:
    """:func:`complete`, with a warning naming what was guessed."""
    points, guessed = complete(keypoints, where)
    if guessed:
        warnings.warn(
            ImposterWarning(
                f"{where}: {', '.join(guessed)} not found, guessed from the other joints (the warp moves "
                "those parts by the guess); detect on a picture where the whole body shows for better"
            ),
            stacklevel=2,
        )
    return points


def openpose_joints(
    flat: list[float], min_confidence: float = 0.05, where: str = "keypoints"
) -> dict[str, np.ndarray]:
    """The joints found in one person of an OpenPose JSON (``pose_keypoints_2d``: x, y, confidence per
    COCO-18 joint), those under ``min_confidence`` left out, nothing guessed."""
    values = np.asarray(flat, dtype=np.float64)
    if values.ndim != 1 or len(values) % 3:
        raise DataError(f"{where}: pose_keypoints_2d must be a flat list of x, y, confidence triples")
    values = values.reshape(-1, 3)
    return {
        name: values[index, :2]
        for index, name in OPENPOSE_COCO18.items()
        if index < len(values) and values[index, 2] >= min_confidence
    }


def from_openpose(flat: list[float], min_confidence: float = 0.05, where: str = "keypoints") -> Keypoints:
    """One person of an OpenPose JSON, the joints it lacks guessed (:func:`completed`)."""
    return completed(openpose_joints(flat, min_confidence, where), where)


def to_openpose(keypoints: Mapping[str, np.ndarray]) -> dict:
    """Keypoints as an OpenPose JSON document of one person (confidence 1; eyes and ears absent)."""
    flat = [0.0] * (18 * 3)
    for index, name in OPENPOSE_COCO18.items():
        x, y = (float(v) for v in keypoints[name])
        flat[3 * index : 3 * index + 3] = [round(x, 3), round(y, 3), 1.0]
    return {"version": 1.3, "people": [{"pose_keypoints_2d": flat}]}


def read_keypoints(path: str | Path, what: str = "keypoints") -> Keypoints:
    """The first person of an OpenPose JSON file (what OpenPose's ``--write_json`` writes), as named joints in
    the image's pixels; one-line errors for a missing or bad file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{what} file {path} not found; give an OpenPose JSON of that image's body joints")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        flat = document["people"][0]["pose_keypoints_2d"]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{what} file {path} is not JSON ({error}); give an OpenPose JSON") from error
    except (KeyError, IndexError, TypeError) as error:
        raise DataError(
            f"{what} file {path} holds no person; OpenPose JSON has people[0].pose_keypoints_2d"
        ) from error
    return from_openpose(flat, where=f"{what} {path}")


def fit_keypoints(
    keypoints: Mapping[str, np.ndarray], size: tuple[int, int], width: int, height: int, fit: str
) -> Keypoints:
    """Keypoints of an image of ``size`` (width, height) moved as ``imposter.images.fit_image`` moves its
    pixels to ``width`` x ``height`` (``pad``: scaled to fit and centred; ``crop``: scaled to fill, centred
    crop)."""
    if fit == "pad":  # fit_image rounds the resized size and pastes it at the integer offset
        left, top, right, bottom = content_box(size, width, height, fit)
        offset = np.array([left, top], dtype=np.float64)
        factor = np.array([(right - left) / size[0], (bottom - top) / size[1]])
    else:
        scale = max(width / size[0], height / size[1])
        factor = np.array([scale, scale])
        offset = np.array([(width - size[0] * scale) / 2, (height - size[1] * scale) / 2])
    return {name: np.asarray(point, dtype=np.float64) * factor + offset for name, point in keypoints.items()}


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-9 else None


def _turned(vector: np.ndarray, angle: float) -> np.ndarray:
    return _rotation(angle) @ vector


def retarget(driving: Mapping[str, np.ndarray], source: Mapping[str, np.ndarray]) -> Keypoints:
    """The source's skeleton in the driving pose, placed at the driving pelvis.

    Every limb bone (upper arm, forearm, thigh, shin), the spine and the neck take the driving bone's
    direction at the source bone's length. The shoulders and hips are rigid with the body, not limbs: each
    pair keeps the source's width along the driving pair's direction, and the shoulders the source's offset
    from the neck turned as the driving spine turns (a stocky body's wide shoulders stay wide in any pose).
    """
    driving, source = with_pelvis(driving), with_pelvis(source)

    def bone(parent: str, child: str) -> np.ndarray:
        direction = _unit(driving[child] - driving[parent])
        offset = source[child] - source[parent]
        return offset if direction is None else direction * np.linalg.norm(offset)

    def pair_axis(left: str, right: str) -> np.ndarray:
        """Half the source's width between two joints, along the driving pair's direction."""
        direction = _unit(driving[left] - driving[right])
        half = (source[left] - source[right]) / 2
        return half if direction is None else direction * np.linalg.norm(half)

    out = {ROOT: driving[ROOT].copy()}
    out["neck"] = out[ROOT] + bone(ROOT, "neck")
    out["head"] = out["neck"] + bone("neck", "head")
    hips = pair_axis("left_hip", "right_hip")
    out["left_hip"], out["right_hip"] = out[ROOT] + hips, out[ROOT] - hips
    spin = _angle(driving["neck"] - driving[ROOT]) - _angle(source["neck"] - source[ROOT])
    middle = (source["left_shoulder"] + source["right_shoulder"]) / 2 - source["neck"]
    shoulders = out["neck"] + _turned(middle, spin)
    half = pair_axis("left_shoulder", "right_shoulder")
    out["left_shoulder"], out["right_shoulder"] = shoulders + half, shoulders - half
    for parent, child in TREE:
        if child not in out:
            out[child] = out[parent] + bone(parent, child)
    return out


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point (N, 2) to the segment a-b, and the position along it (0 at a, 1 at b)."""
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1), t


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixel centres (N, 2) of the backdrop pixels that touch the figure (4-neighbours)."""
    padded = np.pad(mask, 1)
    touching = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    ys, xs = np.nonzero(touching & ~mask)
    return np.stack([xs, ys], axis=1).astype(np.float64) + 0.5


def part_radii(mask: np.ndarray, points: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each part's thickness (pixels) measured on the figure: how far the backdrop is from the bone where
    the part is free (the least over the bone's middle half: a limb lying over the torso reads the torso's
    width there, not its own). The head, a blob around its keypoint, reads it at the keypoint."""
    boundary = _boundary(mask)
    if len(boundary) == 0:
        return np.ones(len(PARTS))
    radii = []
    for a, b in PARTS:
        if (a, b) == HEAD:
            samples = points[b][None, :]
        else:
            t = np.linspace(0.25, 0.75, 5)[:, None]
            samples = points[a][None, :] * (1 - t) + points[b][None, :] * t
        gaps = np.linalg.norm(samples[:, None, :] - boundary[None, :, :], axis=2).min(axis=1)
        radii.append(max(float(gaps.min()), 1.0))
    return np.array(radii)


def assign_parts(mask: np.ndarray, keypoints: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Which part (index into :data:`PARTS`) each figure pixel belongs to (-1 off the figure), and each
    part's radius (pixels, :func:`part_radii`).

    The nearest part relative to its own thickness (distance to the bone over the part's radius; the head:
    distance to its keypoint), so the torso's wide flanks stay with the torso and not with the thin arm
    beside them, and the neck with the torso, not the head.
    """
    points = with_pelvis(keypoints)
    ys, xs = np.nonzero(mask)
    pixels = np.stack([xs, ys], axis=1).astype(np.float64) + 0.5
    labels = np.full(mask.shape, -1, dtype=np.int64)
    radii = part_radii(mask, points)
    if len(pixels) == 0:
        return labels, radii
    distances = np.stack(
        [
            np.linalg.norm(pixels - points[b], axis=1)
            if (a, b) == HEAD
            else _segment_distance(pixels, points[a], points[b])[0]
            for a, b in PARTS
        ],
        axis=1,
    )
    labels[ys, xs] = (distances / radii).argmin(axis=1)
    return labels, radii


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _angle(vector: np.ndarray) -> float:
    return float(np.arctan2(vector[1], vector[0]))


def warp(
    image: np.ndarray,
    mask: np.ndarray,
    source: Mapping[str, np.ndarray],
    target: Mapping[str, np.ndarray],
    background: np.ndarray,
    supersample: int = 1,
    parts: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The source figure moved bone by bone from the ``source`` keypoints to the ``target`` ones.

    ``image`` (H, W, C) float, ``mask`` (H, W) bool: the source figure. Each output pixel looks, front part
    first, for the source pixel that its part's rigid motion (rotation about the bone's first joint, then
    translation onto the target bone) brings there and that belongs to that part; where none does it is
    ``background``. ``supersample`` > 1 averages that many samples per output pixel along each axis
    (anti-aliased edges); ``parts``: :func:`assign_parts` of ``mask`` and ``source``, if already made.
    Returns the warped image and its coverage (0 to 1) of the figure.
    """
    source, target = with_pelvis(source), with_pelvis(target)
    height, width = mask.shape
    labels, radii = parts if parts is not None else assign_parts(mask, source)
    offsets = (np.arange(supersample) + 0.5) / supersample
    gy, gx = np.meshgrid(
        (np.arange(height)[:, None] + offsets[None, :]).ravel(),
        (np.arange(width)[:, None] + offsets[None, :]).ravel(),
        indexing="ij",
    )
    out_points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    found = np.full(len(out_points), -1, dtype=np.int64)  # flat index of the source pixel

    def back(points: np.ndarray, a: str, b: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The source pixel (column, row) the part a-b's rigid motion brings to each of ``points``, and
        whether it is in the picture."""
        turn = _angle(source[b] - source[a]) - _angle(target[b] - target[a])
        moved = (points - target[a]) @ _rotation(turn).T + source[a]  # target -> source coordinates
        col, row = np.floor(moved[:, 0]).astype(np.int64), np.floor(moved[:, 1]).astype(np.int64)
        return col, row, (col >= 0) & (col < width) & (row >= 0) & (row < height)

    for index, (a, b) in enumerate(PARTS):
        col, row, inside = back(out_points, a, b)
        inside &= found < 0
        hit = np.zeros(len(out_points), dtype=bool)
        hit[inside] = labels[row[inside], col[inside]] == index
        found[hit] = row[hit] * width + col[hit]
    # the wedges a bent joint opens: still-empty pixels within a part's own thickness of its target bone
    # take whatever figure pixel that part's motion brings there (the neighbouring part's colours)
    for index, (a, b) in enumerate(PARTS):
        empty = np.nonzero(found < 0)[0]
        if len(empty) == 0:
            break
        near = _segment_distance(out_points[empty], target[a], target[b])[0] <= radii[index]
        empty = empty[near]
        col, row, inside = back(out_points[empty], a, b)
        hit = np.zeros(len(empty), dtype=bool)
        hit[inside] = mask[row[inside], col[inside]]
        found[empty[hit]] = row[hit] * width + col[hit]
    flat = image.reshape(height * width, -1)
    samples = np.where((found >= 0)[:, None], flat[np.maximum(found, 0)], np.asarray(background)[None, :])
    channels = image.shape[2]
    out = samples.reshape(height, supersample, width, supersample, channels).mean(axis=(1, 3))
    coverage = (found >= 0).reshape(height, supersample, width, supersample).mean(axis=(1, 3))
    return out, coverage


Box = tuple[int, int, int, int]  # (left, top, right, bottom) in pixels, right and bottom excluded


def content_box(size: tuple[int, int], width: int, height: int, fit: str) -> Box:
    """Where an image of ``size`` lies after ``imposter.images.fit_image`` to ``width`` x ``height``: the
    whole frame when cropped, the pasted part (not the bars) when padded."""
    if fit != "pad":
        return (0, 0, width, height)
    scale = min(width / size[0], height / size[1])
    resized = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    left, top = (width - resized[0]) // 2, (height - resized[1]) // 2
    return (left, top, left + resized[0], top + resized[1])


def _border(image: np.ndarray, box: Box | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The part of ``image`` in ``box`` (default: the whole image), the pixels of its border (N, C), and
    their median colour: what a plain backdrop is told by."""
    left, top, right, bottom = box or (0, 0, image.shape[1], image.shape[0])
    inside = image[top:bottom, left:right]
    border = np.concatenate([inside[0], inside[-1], inside[:, 0], inside[:, -1]])
    return inside, border, np.median(border, axis=0)


def figure_mask(
    image: np.ndarray, tolerance: float = 24.0, box: Box | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The figure on a plain backdrop: pixels of ``box`` (default: the whole image; a padded image's bars
    are not its backdrop) farther than ``tolerance`` (0-255 units) from the box border's median colour, and
    that colour. Photos on busy backgrounds need a real matte instead."""
    left, top, right, bottom = box or (0, 0, image.shape[1], image.shape[0])
    inside, _, background = _border(image, box)
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[top:bottom, left:right] = np.linalg.norm(inside - background, axis=2) > tolerance
    return mask, background


PLAIN_BORDER = 0.8  # a backdrop is plain when this share of the border is within tolerance of its median


def warn_unless_plain(image: np.ndarray, role: str, box: Box | None = None, tolerance: float = 24.0) -> None:
    """An ImposterWarning when the border of ``image`` (within ``box``) is not mostly one colour: the figure
    is then told from the backdrop by colour wrongly (:func:`figure_mask`), and a matte is needed."""
    _, border, background = _border(image, box)
    plain = float((np.linalg.norm(border - background, axis=1) <= tolerance).mean())
    if plain < PLAIN_BORDER:
        warnings.warn(
            ImposterWarning(
                f"the {role} image's backdrop is not one plain colour (its border is not), so its figure cut "
                f"by colour will be wrong: give ${role}_mask FILE (a matte, the figure light on black) or "
                f"${role}_mask auto (rembg)"
            ),
            stacklevel=3,
        )


def retargeted_picture(
    source_image: np.ndarray,
    driving_image: np.ndarray,
    source_keypoints: Mapping[str, np.ndarray],
    driving_keypoints: Mapping[str, np.ndarray],
    supersample: int = 4,
    boxes: tuple[Box | None, Box | None] = (None, None),
    mattes: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> np.ndarray:
    """The source figure in the driving pose at its own proportions, standing where the driving figure
    stands (pelvis over the driving pelvis, lowest point on the driving figure's lowest point), on the
    source's backdrop colour. Images (H, W, 3) in 0-255; ``boxes``: where each image's content lies
    (:func:`content_box`; None: everywhere); ``mattes``: each image's figure as a boolean mask (None: told
    from the backdrop by colour, :func:`figure_mask`)."""
    source_image = np.asarray(source_image, dtype=np.float64)
    if mattes[0] is None:
        mask, background = figure_mask(source_image, box=boxes[0])
    else:  # the user's matte; the backdrop's colour is that of what it leaves out
        mask = np.asarray(mattes[0], dtype=bool)
        left, top, right, bottom = boxes[0] or (0, 0, mask.shape[1], mask.shape[0])
        outside = ~mask[top:bottom, left:right]
        background = (
            np.median(source_image[top:bottom, left:right][outside], axis=0)
            if outside.any()
            else figure_mask(source_image, box=boxes[0])[1]
        )
    for role, picture, matte, box in (
        ("source", source_image, mattes[0], boxes[0]),
        ("driving", driving_image, mattes[1], boxes[1]),
    ):
        if matte is None:
            warn_unless_plain(np.asarray(picture, dtype=np.float64), role, box)
    if mattes[1] is None:
        driving_mask, _ = figure_mask(np.asarray(driving_image, dtype=np.float64), box=boxes[1])
    else:
        driving_mask = np.asarray(mattes[1], dtype=bool)
    target = retarget(driving_keypoints, source_keypoints)
    parts = assign_parts(mask, source_keypoints)  # once, for both passes
    _, coverage = warp(source_image, mask, source_keypoints, target, background, 1, parts)
    rows = np.nonzero(coverage.max(axis=1) > 0.5)[0]
    driving_rows = np.nonzero(driving_mask.any(axis=1))[0]
    if len(rows) and len(driving_rows):  # stand on the driving figure's ground line
        shift = np.array([0.0, float(driving_rows.max() - rows.max())])
        target = {name: point + shift for name, point in target.items()}
    picture, _ = warp(source_image, mask, source_keypoints, target, background, supersample, parts)
    return picture


def fitted_keypoints(
    keypoints: str | Path | Mapping[str, np.ndarray],
    what: str,
    size: tuple[int, int],
    width: int,
    height: int,
    fit: str,
) -> Keypoints:
    """Keypoints given as an OpenPose JSON file or named joints, in the pixels of the image fitted to
    ``width`` x ``height``."""
    if isinstance(keypoints, (str, Path)):
        points = read_keypoints(keypoints, what)  # completed as it is read
    else:
        points = completed(keypoints, what)
    return fit_keypoints(points, size, width, height, fit)  # affine: the pelvis stays the hips' midpoint


def retargeted_image(
    source: Image.Image,
    driving: Image.Image,
    source_keypoints: Mapping[str, np.ndarray],
    driving_keypoints: Mapping[str, np.ndarray],
    boxes: tuple[Box | None, Box | None] = (None, None),
    mattes: tuple[Image.Image | None, Image.Image | None] = (None, None),
) -> Image.Image:
    """:func:`retargeted_picture` of two PIL images, as an RGB image of the driving image's size; ``mattes``:
    each image's figure as a picture of that size (the figure light, the backdrop black).

    Small images (the toy world's 64 px) are warped with 4x4 samples per pixel, large ones with one."""
    if source.size != driving.size:
        raise DataError(f"retargeting needs images of one size, got {source.size} and {driving.size}")
    supersample = 4 if max(source.size) <= 128 else 1
    picture = retargeted_picture(
        np.asarray(source.convert("RGB")),
        np.asarray(driving.convert("RGB")),
        source_keypoints,
        driving_keypoints,
        supersample,
        boxes,
        tuple(None if matte is None else matte_mask(matte, source.size) for matte in mattes),
    )
    return Image.fromarray(np.clip(np.round(picture), 0, 255).astype(np.uint8))


def moved_figure(pictures: list[Image.Image]) -> np.ndarray:
    """Where the moved figure lies in each retargeted picture, (N, H, W) bool: it stands on one plain colour
    (the source's backdrop) by construction, so :func:`figure_mask` finds it on any source."""
    return np.stack([figure_mask(np.asarray(p.convert("RGB"), dtype=np.float64))[0] for p in pictures])


def matte_image(
    matte: str | Path | Image.Image, role: str = "source", image: Image.Image | None = None
) -> Image.Image:
    """A matte as a white figure on black (RGB, to be fitted like its image): a cutout's alpha channel
    (rembg writes RGBA), else the picture's lightness; ``"auto"``: found in ``image`` by
    :func:`imposter.matting.auto_matte`; one-line errors for a missing or unreadable file."""
    from .matting import auto_matte, is_auto

    if is_auto(matte):
        if image is None:
            raise DataError(f"a {role} matte of 'auto' needs the {role} picture to find the figure in")
        matte = auto_matte(image, role)
    if not isinstance(matte, Image.Image):
        path = Path(matte).expanduser()
        if not path.is_file():
            raise DataError(
                f"{role} mask {path} not found; give a matte of the {role} figure (light on black)"
            )
        try:
            with Image.open(path) as opened:
                matte = opened.copy()
        except OSError as error:
            raise DataError(f"{role} mask {path} is not a readable image ({error})") from error
    if matte.mode in ("RGBA", "LA", "PA") or "transparency" in matte.info:
        lightness = matte.convert("RGBA").getchannel("A")
    else:
        lightness = matte.convert("L")
    return lightness.point(lambda value: 255 if value > 127 else 0).convert("RGB")


def matte_mask(matte: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A matte picture (the figure light, the backdrop dark: rembg's or SAM's output) as a boolean mask;
    a one-line error when it is not the image's size."""
    if matte.size != size:
        raise DataError(
            f"the matte is {matte.size[0]}x{matte.size[1]}, its image {size[0]}x{size[1]}; give one of the image's size"
        )
    return np.asarray(matte.convert("L"), dtype=np.float64) > 127
