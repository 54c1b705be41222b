"""Evaluation pairs, the pairs.csv they are written to, and pretraining examples."""

import csv
from collections import Counter

import numpy as np
import pytest

from imposter.bench.pairs import PAIRS_COLUMNS
from imposter.errors import ConfigError
from imposter.retarget import read_keypoints
from imposter.toyworld.figures import figure_mask, mask_iou
from imposter.toyworld.pairs import make_pairs, sample_training_example, write_pairs
from imposter.toyworld.render import render
from imposter.toyworld.world import (
    KNOWN_WORDS,
    STREAMS,
    SUBJECT_NAMES,
    TABLE_COMBOS,
    TRAIN_COMBOS,
    TUNE_COMBOS,
    caption,
    is_heldout,
)


@pytest.mark.parametrize("split, combos", [("table", TABLE_COMBOS), ("tune", TUNE_COMBOS)])
def test_pairs_transfer_a_heldout_action_from_a_subject_that_was_seen_doing_it(split, combos):
    pairs = make_pairs(len(combos), seed=0, split=split)
    assert {(p.source_subject, p.action) for p in pairs} == set(combos)  # one full round
    for pair in pairs:
        assert is_heldout(pair.source_subject, pair.action)
        assert pair.source_action is None or (pair.source_subject, pair.source_action) in TRAIN_COMBOS
        assert pair.driving_subject != pair.source_subject
        assert not is_heldout(pair.driving_subject, pair.action)
        assert np.array_equal(
            np.asarray(pair.target_image), np.asarray(render(pair.source_instance, pair.driving_pose))
        )
        assert pair.source_instance.name == pair.source_subject
        assert pair.driving_instance.name == pair.driving_subject
        assert pair.source_instance.key[0] == STREAMS[split]  # never the pretraining stream
        assert pair.source_prompt == caption(pair.source_subject)
        assert pair.driving_prompt == caption(pair.driving_subject, pair.action)
        assert pair.target_prompt == caption(pair.source_subject, pair.action)


def test_table_and_tune_splits_are_disjoint_and_sources_are_not_all_standing():
    assert set(TABLE_COMBOS).isdisjoint(TUNE_COMBOS)
    table, tune = make_pairs(40, 0, "table"), make_pairs(40, 0, "tune")
    assert {(p.source_subject, p.action) for p in table}.isdisjoint(
        (p.source_subject, p.action) for p in tune
    )
    posed = sum(p.source_action is not None for p in table) / len(table)
    assert 0.25 < posed < 0.75
    assert table[0].pair_id == "toy-000" and tune[0].pair_id == "tune-000"
    with pytest.raises(ConfigError, match="unknown toy split"):
        make_pairs(1, 0, "test")


def test_every_pair_has_its_own_source_instance():
    pairs = make_pairs(40, 0) + make_pairs(40, 1)
    looks = {(p.source_instance.main, p.source_instance.accent, p.source_instance.body) for p in pairs}
    assert len(looks) == len(pairs)
    assert make_pairs(1, 0)[0].source_instance == pairs[0].source_instance


def test_copying_the_driving_image_is_far_from_the_ground_truth():
    """The floor that v1 lacked: every subject shared one skeleton, so a copy scored pose IoU 0.907."""
    pairs = make_pairs(48, 0)
    copies = [mask_iou(figure_mask(p.driving_image), figure_mask(p.target_image)) for p in pairs]
    assert np.mean(copies) <= 0.80


def test_pairs_are_deterministic_in_the_seed():
    first, again, other = make_pairs(4, 7), make_pairs(4, 7), make_pairs(4, 8)
    assert [p.driving_pose for p in first] == [p.driving_pose for p in again]
    assert [p.driving_pose for p in first] != [p.driving_pose for p in other]
    assert [p.pair_id for p in first] == ["toy-000", "toy-001", "toy-002", "toy-003"]
    with pytest.raises(ConfigError):
        make_pairs(-1, 0)


def test_write_pairs_writes_csv_and_images(tmp_path):
    csv_path = write_pairs(3, seed=1, out_dir=tmp_path / "toy")
    assert csv_path == tmp_path / "toy" / "pairs.csv"
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == PAIRS_COLUMNS
        rows = list(reader)
    assert [r["pair_id"] for r in rows] == ["toy-000", "toy-001", "toy-002"]
    for row in rows:
        for column in (
            "source_image",
            "driving_image",
            "target_image",
            "driving_pose_map",
            "target_pose_map",
            "source_keypoints",
            "driving_keypoints",
        ):
            assert (csv_path.parent / row[column]).is_file()
    assert not list((tmp_path / "toy").rglob("*.tmp"))
    pair = make_pairs(3, seed=1)[1]  # the keypoints are the renders' own joints, as OpenPose JSON
    for role in ("source", "driving"):
        read = read_keypoints(csv_path.parent / rows[1][f"{role}_keypoints"])
        assert all(
            np.allclose(read[name], xy, atol=1e-3) for name, xy in getattr(pair, f"{role}_keypoints").items()
        )
    again = write_pairs(3, seed=1, out_dir=tmp_path / "again")
    assert again.read_bytes() == csv_path.read_bytes()
    assert (again.parent / "target/toy-002.png").read_bytes() == (
        csv_path.parent / "target/toy-002.png"
    ).read_bytes()
    bare = write_pairs(3, seed=1, out_dir=tmp_path / "bare", keypoints=False)  # a user without annotations
    with open(bare, newline="") as handle:
        reader = csv.DictReader(handle)
        assert "source_keypoints" not in reader.fieldnames and len(list(reader)) == 3
    assert not (bare.parent / "source_keypoints").exists()


def test_pairs_csv_starts_with_the_real_datasets_columns():
    real = ["pair_id", "source_image", "source_prompt", "driving_image", "driving_prompt", "target_prompt"]
    assert list(PAIRS_COLUMNS[:6]) == real


def test_training_examples_avoid_heldout_combinations():
    rng = np.random.default_rng(0)
    captions = [sample_training_example(rng, 0, k)[1] for k in range(400)]
    standing = {caption(s) for s in SUBJECT_NAMES}
    assert 0.15 < sum(c in standing for c in captions) / len(captions) < 0.3
    for text in captions:
        assert set(text.split()) <= KNOWN_WORDS
        words = text.split()
        subject, action = words[1], " ".join(words[2:]) or None
        assert subject in SUBJECT_NAMES and not is_heldout(subject, action)
    assert len(Counter(captions)) > 50
    image, _ = sample_training_example(np.random.default_rng(1), 0, 0)
    assert image.size == (64, 64)
