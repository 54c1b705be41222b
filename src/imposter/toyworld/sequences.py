"""Toy-world driving sequences with per-frame ground truth, and how an animation of one scores.

A sequence is cast like a toy pair (:func:`imposter.toyworld.pairs.make_pairs`): a source subject S
(standing, or doing an action it was seen doing), a driving subject D != S who was seen doing action A
in pretraining, (S, A) held out. The driving frames show D moving from standing into A
(:func:`imposter.toyworld.world.sequence_poses`); frame t's ground truth is S in frame t's pose.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image

from ..fileio import atomic_directory, save_image, write_text
from ..metrics.base import EvalItem
from ..retarget import to_openpose
from ..video.writers import frame_name
from .figures import color_similarity
from .metric import ToyGroundTruth
from .pairs import ToyPair, make_pairs
from .render import body_keypoints, render, render_part_map
from .world import Pose, instance, sequence_poses


@dataclass(frozen=True)
class ToySequence(ToyPair):
    """A toy pair whose action unfolds over frames; the pair's own driving and target images are the last frame's."""

    poses: tuple[Pose, ...]  # of the driving frames, in order
    driving_frames: tuple[Image.Image, ...]
    target_frames: tuple[Image.Image, ...]  # render(source_instance, poses[t])

    @property
    def driving_pose_maps(self) -> tuple[Image.Image, ...]:
        """The driving figure's part map in every frame (what ``animate --method pose-control`` is fed)."""
        return tuple(render_part_map(self.driving_instance, pose) for pose in self.poses)

    @property
    def driving_keypoints_frames(self) -> tuple[dict[str, tuple[float, float]], ...]:
        """The driving figure's joints in every frame (a perfect OpenPose: ``animate --method
        imposter``)."""
        return tuple(body_keypoints(self.driving_instance, pose) for pose in self.poses)


def make_sequences(n: int, n_frames: int, seed: int) -> list[ToySequence]:
    """``n`` sequences of ``n_frames`` frames, deterministic in ``seed``, cast like the toy pairs."""
    rng = np.random.default_rng([seed, 1])  # apart from the casting's stream
    sequences = []
    for k, pair in enumerate(make_pairs(n, seed)):
        source = instance(pair.source_subject, "sequences", seed, 2 * k)  # the sequences' own instances
        driver = instance(pair.driving_subject, "sequences", seed, 2 * k + 1)
        poses = tuple(sequence_poses(pair.action, n_frames, rng))
        driving = tuple(render(driver, pose) for pose in poses)
        targets = tuple(render(source, pose) for pose in poses)
        cast = {f.name: getattr(pair, f.name) for f in fields(ToyPair)}
        cast.update(
            pair_id=pair.pair_id.replace("toy-", "toyseq-"),
            source_instance=source,
            driving_instance=driver,
            source_image=render(source, pair.source_pose),
            driving_pose=poses[-1],
            driving_image=driving[-1],
            target_image=targets[-1],
        )
        sequences.append(ToySequence(**cast, poses=poses, driving_frames=driving, target_frames=targets))
    return sequences


def write_sequence(sequence: ToySequence, folder: str | Path) -> tuple[Path, Path, Path]:
    """Write ``source.png``, ``driving/frame_0000.png`` ... and the driving frames' part maps,
    ``driving_pose_map/frame_0000.png`` ..., into ``folder`` (replacing older ones); returns the three paths.
    Beside them, both figures' joints as OpenPose JSON: ``source_keypoints.json`` and
    ``driving_keypoints/frame_0000.json`` ...."""
    folder = Path(folder)
    for name, frames in (
        ("driving", sequence.driving_frames),
        ("driving_pose_map", sequence.driving_pose_maps),
    ):
        with atomic_directory(folder / name) as written:
            for index, frame in enumerate(frames):
                frame.save(written / frame_name(index))
    with atomic_directory(folder / "driving_keypoints") as written:
        for index, points in enumerate(sequence.driving_keypoints_frames):
            (written / Path(frame_name(index)).with_suffix(".json")).write_text(
                json.dumps(to_openpose(points)) + "\n"
            )
    write_text(folder / "source_keypoints.json", json.dumps(to_openpose(sequence.source_keypoints)) + "\n")
    source = save_image(sequence.source_image, folder / "source.png")
    return source, folder / "driving", folder / "driving_pose_map"


def score_sequence(generated: Sequence[Image.Image], sequence: ToySequence) -> list[dict[str, float]]:
    """Per frame: the toy ground-truth scores (:class:`imposter.toyworld.metric.ToyGroundTruth`) and ``consistency``.

    ``consistency`` is the color similarity of the frame with the previous generated frame: the subject
    keeping its look from frame to frame. The first frame has none.
    """
    if len(generated) != len(sequence.target_frames):
        raise ValueError(f"{len(generated)} generated frames for a sequence of {len(sequence.target_frames)}")
    items = [
        EvalItem(image, sequence.source_image, driving, sequence.target_prompt, target)
        for image, driving, target in zip(
            generated, sequence.driving_frames, sequence.target_frames, strict=True
        )
    ]
    scores = ToyGroundTruth().score(items)
    for t in range(1, len(scores)):
        scores[t]["consistency"] = color_similarity(generated[t], generated[t - 1])
    return scores
