"""Read and check a pairs CSV, so that a malformed file fails in one line before any model loads.

The columns are those of the paper's evaluation set (``pair_id, source_image, source_prompt,
driving_image, driving_prompt, target_prompt``) plus optional ones: ``target_image`` with the ground truth,
``driving_pose_map`` (the driving image's pose map, read by ``pose-control``), ``target_pose_map`` (the
ground truth's, read by the toy-only ``pose-control-oracle``), ``source_keypoints`` and ``driving_keypoints``
(OpenPose JSON files of each image's body joints, read by ``imposter``); the toy world's pairs have
them all. Paths are relative to the CSV's folder, or absolute.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..errors import DataError, PromptError
from ..prompts import compose_target_prompt

TARGET_COLUMN = "target_image"
REQUIRED_COLUMNS = (
    "pair_id",
    "source_image",
    "source_prompt",
    "driving_image",
    "driving_prompt",
    "target_prompt",
)  # the paper's evaluation set (imposter120's pairs.csv)
POSE_MAP_COLUMNS = ("driving_pose_map", "target_pose_map")
OPTIONAL_IMAGES = (TARGET_COLUMN, *POSE_MAP_COLUMNS)
KEYPOINT_COLUMNS = ("source_keypoints", "driving_keypoints")  # OpenPose JSON files (imposter)
OPTIONAL_FILES = (*OPTIONAL_IMAGES, *KEYPOINT_COLUMNS)
PAIRS_COLUMNS = (
    *REQUIRED_COLUMNS,
    *OPTIONAL_FILES,
)  # what a writer with ground truth (the toy world) writes
PAIR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # pair ids name folders in the output


@dataclass(frozen=True)
class BenchPair:
    """One row of a pairs CSV, with image paths resolved and the target prompt filled in."""

    pair_id: str
    source_image: Path
    source_prompt: str
    driving_image: Path
    driving_prompt: str
    target_prompt: str
    target_image: Path | None = None  # ground truth, where the CSV has it
    driving_pose_map: Path | None = None
    target_pose_map: Path | None = None
    source_keypoints: Path | None = None
    driving_keypoints: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        return {
            "pair_id": self.pair_id,
            "source_image": str(self.source_image),
            "source_prompt": self.source_prompt,
            "driving_image": str(self.driving_image),
            "driving_prompt": self.driving_prompt,
            "target_prompt": self.target_prompt,
            **{name: str(getattr(self, name)) if getattr(self, name) else None for name in OPTIONAL_FILES},
        }


def read_pairs(path: str | Path) -> list[BenchPair]:
    """Every pair of the CSV at ``path``, in file order; DataError naming the row and the fix otherwise."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataError(f"pairs file {path} not found; pass $pairs with the path of a pairs.csv")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise DataError(
                f"{path} lacks the column(s) {', '.join(missing)}; its header must hold "
                f"{','.join(REQUIRED_COLUMNS)} (and optionally {', '.join(OPTIONAL_FILES)})"
            )
        pairs: list[BenchPair] = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            pair = _read_row(row, path, line)
            if pair.pair_id in seen:
                raise DataError(
                    f"{path} line {line}: pair_id {pair.pair_id!r} is also on line {seen[pair.pair_id]}; "
                    "give every pair a unique id"
                )
            seen[pair.pair_id] = line
            pairs.append(pair)
    if not pairs:
        raise DataError(f"{path} holds no pairs; add one row per (source, driving) pair below the header")
    return pairs


def _read_row(row: dict[str, str | None], path: Path, line: int) -> BenchPair:
    cells = {name: " ".join((value or "").split()) for name, value in row.items() if name is not None}
    pair_id = cells["pair_id"]
    where = f"{path} line {line} (pair {pair_id or '?'})"
    if not PAIR_ID.fullmatch(pair_id):
        raise DataError(
            f"{where}: pair_id {pair_id!r} must start with a letter or digit and hold only letters, "
            "digits, '.', '_' or '-' (it names output folders)"
        )
    for name in ("source_prompt", "driving_prompt"):
        if not cells[name]:
            raise DataError(f"{where}: {name} is empty; write a caption such as 'a dog'")
    target_prompt = cells["target_prompt"]
    if not target_prompt:
        try:
            target_prompt = compose_target_prompt(cells["source_prompt"], cells["driving_prompt"])
        except PromptError as error:
            raise DataError(f"{where}: target_prompt is empty and cannot be composed ({error})") from error
    images = {
        name: _image_path(cells[name], name, path.parent, where)
        for name in ("source_image", "driving_image", *OPTIONAL_IMAGES)
        if cells.get(name) or name not in OPTIONAL_IMAGES  # an empty optional cell: not there
    }
    return BenchPair(
        pair_id=pair_id,
        source_image=images["source_image"],
        source_prompt=cells["source_prompt"],
        driving_image=images["driving_image"],
        driving_prompt=cells["driving_prompt"],
        target_prompt=target_prompt,
        target_image=images.get(TARGET_COLUMN),
        driving_pose_map=images.get("driving_pose_map"),
        target_pose_map=images.get("target_pose_map"),
        **{
            name: _file_path(cells[name], name, path.parent, where)
            for name in KEYPOINT_COLUMNS
            if cells.get(name)
        },
    )


def _file_path(cell: str, column: str, folder: Path, where: str) -> Path:
    """The file a cell names, resolved against the CSV's folder; it must exist."""
    resolved = (folder / Path(cell).expanduser()).resolve()
    if not resolved.is_file():
        raise DataError(
            f"{where}: {column} {cell!r} not found at {resolved}; fix the path "
            f"(relative paths are read from {folder})"
        )
    return resolved


def _image_path(cell: str, column: str, folder: Path, where: str) -> Path:
    """The image a cell names, resolved against the CSV's folder; it must exist and open as an image."""
    if not cell:
        raise DataError(f"{where}: {column} is empty; give the image's path (relative to {folder})")
    resolved = _file_path(cell, column, folder, where)
    try:
        with Image.open(resolved):  # reads the header only: cheap, and catches non-images early
            pass
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{where}: {column} {resolved} is not a readable image ({error})") from error
    return resolved
