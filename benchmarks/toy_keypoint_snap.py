"""A negative result kept runnable (issue 19): snapping noisy keypoints to the figure's medial axis.

imposter-retarget is only as good as its keypoints (README: pose IoU 0.771 -> 0.673 with 1 px of jitter per
joint). Could the silhouette repair them, with no model? Each joint moves within +-``reach`` px to where
its bones run deepest inside the figure (distance to the backdrop, capped at 2.5 px), minus ``weight`` x its
squared move, a few rounds of coordinate ascent. On the 8 tune pairs, both images, 1 px of jitter:

    python benchmarks/toy_keypoint_snap.py      # a few seconds

mean joint error 1.18 px -> 1.06 (weight 0.1), 1.09 (0.3), 1.12 (0.6): a tenth of the error, not kept.
Limbs lying over the torso read the torso's depth, and hands and feet sit at a limb's end, not its middle.
"""

from __future__ import annotations

import itertools

import numpy as np

from imposter.retarget import JOINTS, _boundary, figure_mask
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


if __name__ == "__main__":
    main()
