"""A negative result kept runnable (issue 19): snapping noisy keypoints to the figure's medial axis.

imposter is only as good as its keypoints (README: pose IoU 0.771 -> 0.673 with 1 px of jitter per
joint). Could the silhouette repair them, with no model? Each joint moves within +-``reach`` px to where
its bones run deepest inside the figure (distance to the backdrop, capped at 2.5 px), minus ``weight`` x its
squared move, a few rounds of coordinate ascent. On the 8 tune pairs, both images, 1 px of jitter:

    python benchmarks/toy_keypoint_snap.py      # a minute

mean joint error 1.18 px -> 1.06 (weight 0.1), 1.09 (0.3), 1.12 (0.6): a tenth of the error, not kept.
Limbs lying over the torso read the torso's depth, and hands and feet sit at a limb's end, not its middle.

A second repair, also negative: each driving limb turned about its parent joint (within +-24 degrees, in
kinematic order) to where most of the bone lies inside the driving figure. On 24 tune pairs with 1 px of
jitter on the driving joints alone, the moved picture's overlap with the truth goes from 0.676 to 0.677
(0.764 with exact joints): at 64 px a limb is about as thick as it is long, so every angle within the span
keeps the bone inside the figure and the silhouette cannot tell them apart.
"""

from __future__ import annotations

import itertools

import numpy as np

from imposter.retarget import JOINTS, TREE, _boundary, figure_mask
from imposter.toyworld.pairs import make_pairs

BONES = (
    ("neck", "head"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("left_hip", "neck"), ("right_hip", "neck"),
)  # fmt: skip


def snap(keypoints: dict, mask: np.ndarray, reach=1.5, step=0.5, rounds=3, weight=0.3) -> dict:
    """The keypoints moved toward the figure's medial axis (module docstring)."""
    boundary = _boundary(mask)
    height, width = mask.shape

    def depth(points: np.ndarray) -> np.ndarray:
        distance = np.linalg.norm(points[:, None, :] - boundary[None], axis=2).min(axis=1)
        col = np.clip(np.floor(points[:, 0]).astype(int), 0, width - 1)
        row = np.clip(np.floor(points[:, 1]).astype(int), 0, height - 1)
        return np.where(mask[row, col], distance, -distance)

    points = {name: np.asarray(xy, float).copy() for name, xy in keypoints.items() if name in JOINTS}
    start = {name: xy.copy() for name, xy in points.items()}
    t = np.linspace(0.15, 0.85, 7)[None, :, None]
    grid = np.arange(-reach, reach + 1e-9, step)
    offsets = np.array(list(itertools.product(grid, grid)))
    for _ in range(rounds):
        for name in points:
            candidates = points[name][None] + offsets
            score = -weight * np.sum((candidates - start[name]) ** 2, axis=1)
            for a, b in BONES:
                if name in (a, b):
                    other = points[b if name == a else a][None, None, :]
                    segment = candidates[:, None, :] * (1 - t) + other * t
                    samples = depth(segment.reshape(-1, 2)).reshape(len(candidates), -1)
                    score += np.minimum(samples, 2.5).mean(axis=1)
            points[name] = candidates[np.argmax(score)]
    return points


def main() -> None:
    data = []
    for pair in make_pairs(8, 0, "tune"):
        rng = np.random.default_rng(int(pair.pair_id[-3:]))
        for role, image in (("source", pair.source_image), ("driving", pair.driving_image)):
            truth = {name: np.array(xy) for name, xy in getattr(pair, f"{role}_keypoints").items()}
            noisy = {name: xy + rng.normal(0, 1, 2) for name, xy in truth.items()}
            data.append((truth, noisy, figure_mask(np.asarray(image, float))[0]))

    def error(found: dict, truth: dict) -> float:
        return float(np.mean([np.linalg.norm(found[name] - truth[name]) for name in truth]))

    print(f"jittered: {np.mean([error(noisy, truth) for truth, noisy, _ in data]):.3f} px")
    for weight in (0.1, 0.3, 0.6):
        snapped = np.mean([error(snap(noisy, mask, weight=weight), truth) for truth, noisy, mask in data])
        print(f"snapped, weight {weight}: {snapped:.3f} px")
    angles_probe()


LIMBS = (
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)  # fmt: skip


def below(joint: str) -> list[str]:
    """``joint`` and every joint below it in the kinematic tree."""
    return [joint] + [name for parent, child in TREE if parent == joint for name in below(child)]


def refine_angles(keypoints: dict, mask: np.ndarray, span: float = 24, step: float = 3) -> dict:
    """Each limb turned about its parent joint to where most of the bone (30-100% of its length) lies in
    ``mask``, the joints below it turned along; ties keep the smaller turn."""
    points = {name: np.asarray(xy, float).copy() for name, xy in keypoints.items()}
    t = np.linspace(0.3, 1.0, 8)[:, None]
    height, width = mask.shape
    for a, b in LIMBS:
        bone = points[b] - points[a]
        base, length = np.arctan2(bone[1], bone[0]), np.linalg.norm(bone)
        scores = []
        for turn in np.deg2rad(np.arange(-span, span + 1e-9, step)):
            samples = points[a] + t * length * np.array([np.cos(base + turn), np.sin(base + turn)])
            cols, rows = np.floor(samples).astype(int).T
            inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
            hits = np.where(inside, mask[rows.clip(0, height - 1), cols.clip(0, width - 1)], False)
            scores.append((hits.mean(), -abs(turn), turn))
        turn = max(scores)[2]
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        for name in below(b):
            points[name] = points[a] + rotation @ (points[name] - points[a])
    return points


def angles_probe(sigma: float = 1.0) -> None:
    """The moved picture's overlap with the truth, driving joints jittered, with and without the repair."""
    from imposter.retarget import completed, retargeted_picture

    rows = {"exact": [], "jittered": [], "jittered, angles refined": []}
    for number, pair in enumerate(make_pairs(24, 0, "tune")):
        rng = np.random.default_rng(number)
        source = completed(pair.source_keypoints)
        driving = {name: np.asarray(xy, float) for name, xy in pair.driving_keypoints.items()}
        noisy = {name: xy + rng.normal(0, sigma, 2) for name, xy in driving.items()}
        mask = figure_mask(np.asarray(pair.driving_image, float))[0]
        truth = figure_mask(np.asarray(pair.target_image, float))[0]
        for row, points in zip(rows, (driving, noisy, refine_angles(noisy, mask)), strict=True):
            picture = retargeted_picture(
                np.asarray(pair.source_image), np.asarray(pair.driving_image), source, completed(points)
            )
            moved = figure_mask(picture)[0]
            rows[row].append((moved & truth).sum() / max((moved | truth).sum(), 1))
    for row, values in rows.items():
        print(f"moved picture vs truth, driving joints {row}: IoU {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
