"""Data drawn from the toy world: evaluation pairs with exact ground truth, and pretraining examples.

A pair is a source (an instance S of class C that pretraining never rendered, standing or doing an
action C was seen doing in pretraining: real source photos are not posed; its caption names the class
alone, "a dog"), a driving image (an instance D of another class doing action A in pose theta) and the
ground truth render(S, theta): S's own body, colours and marks in D's joint angles, standing where D
stands (the placement rule of :func:`imposter.toyworld.render.skeleton`). (C, A) is always a held-out
combination, from the split asked for (``table`` for reported results, ``tune`` for choosing settings),
so a method must move an action onto a class that never performed it in pretraining, while D's class was
seen doing it; and it must keep *this* instance, which no caption names.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imposter.bench.pairs import KEYPOINT_COLUMNS, PAIRS_COLUMNS
from imposter.errors import ConfigError
from imposter.retarget import to_openpose
from imposter.toyworld.render import body_keypoints, render, render_part_map
from imposter.toyworld.world import (
    SPLITS,
    SUBJECT_NAMES,
    TRAIN_COMBOS,
    Pose,
    Subject,
    caption,
    instance,
    is_heldout,
    sample_pose,
)

STANDING_FRACTION = 0.22  # share of standing images among pretraining examples
SOURCE_STANDING_FRACTION = 0.5  # share of evaluation sources that stand; the others do a seen action


@dataclass(frozen=True)
class ToyPair:
    """One evaluation pair with its ground truth and everything that generated it."""

    pair_id: str
    source_subject: str  # the source's class
    driving_subject: str  # the driving image's class
    action: str
    source_action: str | None  # what the source image shows its subject doing (None: standing)
    source_pose: Pose
    driving_pose: Pose
    source_image: Image.Image
    driving_image: Image.Image
    target_image: Image.Image  # render(source_instance, driving_pose)
    source_instance: Subject
    driving_instance: Subject

    @property
    def source_prompt(self) -> str:
        return caption(self.source_subject)

    @property
    def driving_prompt(self) -> str:
        return caption(self.driving_subject, self.action)

    @property
    def target_prompt(self) -> str:
        return caption(self.source_subject, self.action)

    @property
    def driving_pose_map(self) -> Image.Image:
        """The driving figure's part map (our DensePose of the driving image): what a user would have."""
        return render_part_map(self.driving_instance, self.driving_pose)

    @property
    def source_keypoints(self) -> dict[str, tuple[float, float]]:
        """The source figure's body joints (a perfect OpenPose of the source image)."""
        return body_keypoints(self.source_instance, self.source_pose)

    @property
    def driving_keypoints(self) -> dict[str, tuple[float, float]]:
        """The driving figure's body joints (a perfect OpenPose of the driving image)."""
        return body_keypoints(self.driving_instance, self.driving_pose)

    @property
    def target_pose_map(self) -> Image.Image:
        """The ground truth's part map: the source's own body in the driving pose (retargeting solved)."""
        return render_part_map(self.source_instance, self.driving_pose)


def check_split(split: str) -> tuple[tuple[str, str], ...]:
    """The held-out combinations of ``split`` ("table" or "tune")."""
    if split not in SPLITS:
        raise ConfigError(f"unknown toy split {split!r}; choose one of {', '.join(SPLITS)}")
    return SPLITS[split]


def make_pairs(n: int, seed: int, split: str = "table") -> list[ToyPair]:
    """``n`` evaluation pairs from ``split``'s combinations, used in turn; deterministic in (seed, split)."""
    if n < 0:
        raise ConfigError(f"the number of pairs must be >= 0, got {n}")
    combos = check_split(split)
    rng = np.random.default_rng([seed, list(SPLITS).index(split)])
    width = max(3, len(str(n - 1)))
    pairs: list[ToyPair] = []
    order: list[tuple[str, str]] = []
    for k in range(n):
        if k % len(combos) == 0:  # a fresh shuffle of all combinations, so they stay balanced
            order = [combos[i] for i in rng.permutation(len(combos))]
        source, action = order[k % len(combos)]
        drivers = [s for s in SUBJECT_NAMES if s != source and not is_heldout(s, action)]
        driving = drivers[int(rng.integers(len(drivers)))]
        seen = [a for s, a in TRAIN_COMBOS if s == source]
        source_action = (
            None if rng.random() < SOURCE_STANDING_FRACTION else seen[int(rng.integers(len(seen)))]
        )
        source_pose, driving_pose = sample_pose(source_action, rng), sample_pose(action, rng)
        source_instance = instance(source, split, seed, 2 * k)
        driving_instance = instance(driving, split, seed, 2 * k + 1)
        pairs.append(
            ToyPair(
                pair_id=f"{'toy' if split == 'table' else 'tune'}-{k:0{width}d}",
                source_subject=source,
                driving_subject=driving,
                action=action,
                source_action=source_action,
                source_pose=source_pose,
                driving_pose=driving_pose,
                source_image=render(source_instance, source_pose),
                driving_image=render(driving_instance, driving_pose),
                target_image=render(source_instance, driving_pose),
                source_instance=source_instance,
                driving_instance=driving_instance,
            )
        )
    return pairs


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)``, then move the temp file onto ``path`` (same folder, so the move is atomic)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_pairs(n: int, seed: int, out_dir: str | Path, split: str = "table", keypoints: bool = True) -> Path:
    """Write ``n`` pairs (PNG images in source/, driving/, target/, driving_pose_map/, target_pose_map/, the
    OpenPose JSON keypoints of source and driving in source_keypoints/ and driving_keypoints/ unless not
    ``keypoints``, and pairs.csv) to ``out_dir``; return the CSV. Without keypoints the CSV is what a user
    without annotations has (imposter then finds them with the model's detector, or ``--detect-pose``)."""
    out = Path(out_dir)
    rows = []
    for pair in make_pairs(n, seed, split):
        names = {}
        for role, image in (
            ("source", pair.source_image),
            ("driving", pair.driving_image),
            ("target", pair.target_image),
            ("driving_pose_map", pair.driving_pose_map),
            ("target_pose_map", pair.target_pose_map),
        ):
            (out / role).mkdir(parents=True, exist_ok=True)
            names[role] = f"{role}/{pair.pair_id}.png"
            _replace_atomically(out / names[role], lambda temp, image=image: image.save(temp, format="PNG"))
        for role, points in (
            (("source_keypoints", pair.source_keypoints), ("driving_keypoints", pair.driving_keypoints))
            if keypoints
            else ()
        ):
            (out / role).mkdir(parents=True, exist_ok=True)
            names[role] = f"{role}/{pair.pair_id}.json"
            document = json.dumps(to_openpose(points))
            _replace_atomically(out / names[role], lambda temp, text=document: temp.write_text(text + "\n"))
        rows.append(
            (
                pair.pair_id,
                names["source"],
                pair.source_prompt,
                names["driving"],
                pair.driving_prompt,
                pair.target_prompt,
                names["target"],
                names["driving_pose_map"],
                names["target_pose_map"],
                *((names["source_keypoints"], names["driving_keypoints"]) if keypoints else ()),
            )
        )

    def write_csv(temp: Path) -> None:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(PAIRS_COLUMNS if keypoints else PAIRS_COLUMNS[: -len(KEYPOINT_COLUMNS)])
            writer.writerows(rows)

    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "pairs.csv"
    _replace_atomically(csv_path, write_csv)
    return csv_path


def training_figure(rng: np.random.Generator, seed: int, index: int) -> tuple[Subject, Pose, str]:
    """Pretraining example ``index`` as (instance, pose, caption): a fresh instance (stream "pretraining",
    ``seed``) of a class standing (about 22%) or doing an action its class is seen doing; the caption names
    the class."""
    if rng.random() < STANDING_FRACTION:
        subject, action = SUBJECT_NAMES[int(rng.integers(len(SUBJECT_NAMES)))], None
    else:
        subject, action = TRAIN_COMBOS[int(rng.integers(len(TRAIN_COMBOS)))]
    figure = instance(subject, "pretraining", seed, index)
    return figure, sample_pose(action, rng), caption(subject, action)


def sample_training_example(rng: np.random.Generator, seed: int, index: int) -> tuple[Image.Image, str]:
    """Pretraining example ``index`` (image, caption): see :func:`training_figure`."""
    figure, pose, text = training_figure(rng, seed, index)
    return render(figure, pose), text
