"""Toy driving sequences: casting, per-frame ground truth, files, and scores."""

import numpy as np
import pytest

from imposter.toyworld.figures import figure_mask, mask_iou
from imposter.toyworld.render import render
from imposter.toyworld.sequences import make_sequences, score_sequence, write_sequence
from imposter.toyworld.world import STREAMS, caption, is_heldout
from imposter.video.frames import read_frames


@pytest.fixture(scope="module")
def sequences():
    return make_sequences(2, 5, seed=0)


def test_each_frame_has_its_ground_truth_and_the_cast_is_held_out(sequences):
    for sequence in sequences:
        assert is_heldout(sequence.source_subject, sequence.action)
        assert sequence.driving_subject != sequence.source_subject
        assert not is_heldout(sequence.driving_subject, sequence.action)
        assert sequence.target_prompt == caption(sequence.source_subject, sequence.action)
        assert sequence.target_image is sequence.target_frames[-1]  # the pair it extends is its last frame
        assert len(sequence.poses) == len(sequence.driving_frames) == len(sequence.target_frames) == 5
        for pose, driving, target in zip(
            sequence.poses, sequence.driving_frames, sequence.target_frames, strict=True
        ):
            assert np.array_equal(np.asarray(target), np.asarray(render(sequence.source_instance, pose)))
            assert np.array_equal(np.asarray(driving), np.asarray(render(sequence.driving_instance, pose)))
        assert sequence.source_instance.key[0] == STREAMS["sequences"]
        assert np.array_equal(
            np.asarray(sequence.source_image),
            np.asarray(render(sequence.source_instance, sequence.source_pose)),
        )


def test_the_pose_moves_over_the_sequence_and_is_deterministic(sequences):
    masks = [figure_mask(frame) for frame in sequences[0].target_frames]
    assert mask_iou(masks[0], masks[-1]) < 0.8  # from standing into the action
    again = make_sequences(2, 5, seed=0)
    assert [s.poses for s in again] == [s.poses for s in sequences]
    assert make_sequences(2, 5, seed=1)[0].poses != sequences[0].poses


def test_written_sequences_read_back_in_order(sequences, tmp_path):
    source, driving, maps = write_sequence(sequences[0], tmp_path)
    frames, pose_maps = read_frames(driving).images, read_frames(maps).images
    assert source.exists() and len(frames) == len(pose_maps) == 5
    for written, made in ((frames, sequences[0].driving_frames), (pose_maps, sequences[0].driving_pose_maps)):
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(written, made, strict=True))
    # each frame's map covers that frame's figure (the body; accessories other than a tail are not parts)
    for frame, pose_map in zip(frames, pose_maps, strict=True):
        assert mask_iou(figure_mask(frame), np.asarray(pose_map).max(axis=-1) > 0) > 0.6


def test_scores_of_the_ground_truth_itself(sequences):
    sequence = sequences[0]
    scores = score_sequence(sequence.target_frames, sequence)
    assert [s["pose_iou"] for s in scores] == [1.0] * 5 and scores[0]["psnr"] == 100.0
    assert all(s["identity"] > 0.95 for s in scores)
    assert "consistency" not in scores[0] and all(s["consistency"] > 0.95 for s in scores[1:])
    copied = score_sequence(
        sequence.driving_frames, sequence
    )  # the driving frames: right pose, wrong subject
    assert all(s["identity"] < 0.6 and s["leakage"] > 0.95 for s in copied)
