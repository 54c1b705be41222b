"""Data drawn from the toy world: evaluation pairs with exact ground truth, and pretraining examples.

A pair is a source (subject S standing), a driving image (subject D != S doing action A in pose theta)
and the ground truth render(S, theta). (S, A) is always a held-out combination, so a method must move an
action onto a subject that never performed it in pretraining, while (D, A) was seen.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imposter.errors import ConfigError
from imposter.toyworld.render import render
from imposter.toyworld.world import (
    HELDOUT_COMBOS,
    SUBJECT_NAMES,
    TRAIN_COMBOS,
    Pose,
    caption,
    is_heldout,
    sample_pose,
)

PAIRS_COLUMNS = (
    "pair_id",
    "source_image",
    "source_prompt",
    "driving_image",
    "driving_prompt",
    "target_prompt",
    "target_image",
)  # the real pairs.csv's six columns, plus the ground truth
STANDING_FRACTION = 0.22  # share of standing images among pretraining examples


@dataclass(frozen=True)
class ToyPair:
    """One evaluation pair with its ground truth and everything that generated it."""

    pair_id: str
    source_subject: str
    driving_subject: str
    action: str
    source_pose: Pose
    driving_pose: Pose
    source_image: Image.Image
    driving_image: Image.Image
    target_image: Image.Image  # render(source_subject, driving_pose)

    @property
    def source_prompt(self) -> str:
        return caption(self.source_subject)

    @property
    def driving_prompt(self) -> str:
        return caption(self.driving_subject, self.action)

    @property
    def target_prompt(self) -> str:
        return caption(self.source_subject, self.action)


def make_pairs(n: int, seed: int) -> list[ToyPair]:
    """``n`` evaluation pairs, deterministic in ``seed``; the held-out combinations are used in turn."""
    if n < 0:
        raise ConfigError(f"the number of pairs must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    width = max(3, len(str(n - 1)))
    pairs: list[ToyPair] = []
    order: list[tuple[str, str]] = []
    for k in range(n):
        if k % len(HELDOUT_COMBOS) == 0:  # a fresh shuffle of all combinations, so they stay balanced
            order = [HELDOUT_COMBOS[i] for i in rng.permutation(len(HELDOUT_COMBOS))]
        source, action = order[k % len(HELDOUT_COMBOS)]
        drivers = [s for s in SUBJECT_NAMES if s != source and not is_heldout(s, action)]
        driving = drivers[int(rng.integers(len(drivers)))]
        source_pose, driving_pose = sample_pose(None, rng), sample_pose(action, rng)
        pairs.append(
            ToyPair(
                pair_id=f"toy-{k:0{width}d}",
                source_subject=source,
                driving_subject=driving,
                action=action,
                source_pose=source_pose,
                driving_pose=driving_pose,
                source_image=render(source, source_pose),
                driving_image=render(driving, driving_pose),
                target_image=render(source, driving_pose),
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


def write_pairs(n: int, seed: int, out_dir: str | Path) -> Path:
    """Write ``n`` pairs (PNG images in source/, driving/, target/ and pairs.csv) to ``out_dir``; return the CSV."""
    out = Path(out_dir)
    rows = []
    for pair in make_pairs(n, seed):
        names = {}
        for role, image in (
            ("source", pair.source_image),
            ("driving", pair.driving_image),
            ("target", pair.target_image),
        ):
            (out / role).mkdir(parents=True, exist_ok=True)
            names[role] = f"{role}/{pair.pair_id}.png"
            _replace_atomically(out / names[role], lambda temp, image=image: image.save(temp, format="PNG"))
        rows.append(
            (
                pair.pair_id,
                names["source"],
                pair.source_prompt,
                names["driving"],
                pair.driving_prompt,
                pair.target_prompt,
                names["target"],
            )
        )

    def write_csv(temp: Path) -> None:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(PAIRS_COLUMNS)
            writer.writerows(rows)

    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "pairs.csv"
    _replace_atomically(csv_path, write_csv)
    return csv_path


def sample_training_example(rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A pretraining (image, caption): a subject standing (about 22%) or doing a non-held-out action."""
    if rng.random() < STANDING_FRACTION:
        subject, action = SUBJECT_NAMES[int(rng.integers(len(SUBJECT_NAMES)))], None
    else:
        subject, action = TRAIN_COMBOS[int(rng.integers(len(TRAIN_COMBOS)))]
    return render(subject, sample_pose(action, rng)), caption(subject, action)
