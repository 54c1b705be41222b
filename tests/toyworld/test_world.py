"""The toy world's cast, captions, held-out split and pose sampling."""

from collections import Counter
from dataclasses import fields

import numpy as np
import pytest

from imposter.errors import ConfigError
from imposter.toyworld.model import build_tokenizer
from imposter.toyworld.world import (
    ACTIONS,
    ANGLE_JITTER_MAX,
    BACKGROUND,
    CLASSES,
    HELDOUT_COMBOS,
    JOINTS,
    KNOWN_WORDS,
    PALETTE,
    PATTERNS,
    PROPORTION_JITTER,
    STREAMS,
    SUBJECT_NAMES,
    SUBJECTS,
    TABLE_COMBOS,
    TRAIN_COMBOS,
    TUNE_COMBOS,
    VOCABULARY,
    Pose,
    Subject,
    caption,
    get_class,
    instance,
    is_heldout,
    mean_pose,
    sample_pose,
    sequence_poses,
)


def test_cast_sizes_and_names():
    assert len(SUBJECTS) >= 8 and len(ACTIONS) >= 8
    assert all(len(name.split()) == 1 for name in SUBJECT_NAMES)  # captions name the class only
    assert len(set(SUBJECT_NAMES)) == len(SUBJECT_NAMES)


def test_palette_far_from_background_and_its_colours_distinct():
    background = np.array(BACKGROUND)
    for colour in PALETTE + tuple(c for s in SUBJECTS for c in (s.main, s.accent)):
        assert np.abs(np.array(colour) - background).max() > 60, colour
    colours = np.array(PALETTE, dtype=float)
    distances = np.linalg.norm(colours[:, None] - colours[None], axis=-1) + np.eye(len(colours)) * 1e9
    assert distances.min() > 45  # olive and brown are the closest pair


def test_classes_differ_in_shape_not_only_colour():
    """Two classes never share head shape, body type and required accessories all at once."""
    shapes = {(c.head, c.body, c.required) for c in CLASSES}
    assert len(shapes) == len(CLASSES)
    assert len({(c.head, c.required) for c in CLASSES}) == len(CLASSES)


def test_instances_are_seeded_varied_and_stay_in_their_class():
    first = instance("dog", "table", 0, 5)
    assert first == instance("dog", "table", 0, 5)
    drawn = [instance("dog", "table", 0, k) for k in range(40)]
    assert len({(s.main, s.accent, s.extra, s.pattern, s.accessories) for s in drawn}) == 40
    assert len({s.pattern for s in drawn}) == len(PATTERNS)
    dog = get_class("dog")
    for subject in drawn:
        assert subject.name == "dog" and subject.head == dog.head
        assert set(dog.required) <= set(subject.accessories) <= set(dog.required + dog.optional)
        assert len({subject.main, subject.accent, subject.extra}) == 3
        for f in fields(subject.body):
            ratio = getattr(subject.body, f.name) / getattr(dog.body, f.name)
            assert 1 - PROPORTION_JITTER <= ratio <= 1 + PROPORTION_JITTER
    assert caption(drawn[0], "waving") == "a dog waving"  # the caption never names the instance


def test_instance_streams_are_disjoint():
    """The same (seed, index) in two streams gives two instances: pretraining never renders a pair's source."""
    for k in range(20):
        looks = {stream: instance("cat", stream, 0, k) for stream in STREAMS}
        assert len({(s.main, s.accent, s.extra, s.body) for s in looks.values()}) == len(STREAMS)
    with pytest.raises(ConfigError, match="unknown instance stream"):
        instance("cat", "holiday", 0, 0)


def test_captions_split_into_vocabulary():
    assert caption("robot") == "a robot"
    assert caption("robot", "raising both arms") == "a robot raising both arms"
    assert caption(instance("robot", "tune", 0, 1)) == "a robot"
    assert caption("robot", "standing") == "a robot"
    assert caption("alien", "waving") == "an alien waving"  # issue 20: not "a alien"
    tokenizer = build_tokenizer()
    for name in SUBJECT_NAMES:
        for action in (None, *ACTIONS):
            text = caption(name, action)
            assert set(text.split()) <= KNOWN_WORDS
            # the tokenizer reads every word, the article "an" as "a": no unknown token
            assert tokenizer.unk_token_id not in tokenizer(text).input_ids
            assert tokenizer(text).input_ids == tokenizer("a " + text.split(" ", 1)[1]).input_ids
    assert VOCABULARY == sorted(set(VOCABULARY)) and "an" not in VOCABULARY


def test_unknown_names_raise_config_error():
    with pytest.raises(ConfigError, match="unknown toy class"):
        caption("green robot")
    with pytest.raises(ConfigError, match="unknown toy action"):
        sample_pose("flying", np.random.default_rng(0))


def test_heldout_design_is_balanced():
    assert set(HELDOUT_COMBOS).isdisjoint(TRAIN_COMBOS)
    assert len(HELDOUT_COMBOS) + len(TRAIN_COMBOS) == len(SUBJECTS) * len(ACTIONS)
    per_subject = Counter(s for s, _ in HELDOUT_COMBOS)
    per_action = Counter(a for _, a in HELDOUT_COMBOS)
    assert set(per_subject.values()) == {2} and len(per_subject) == len(SUBJECTS)
    assert set(per_action) == set(ACTIONS)  # every action is held out for someone ...
    assert all(len(SUBJECTS) - count >= 2 for count in per_action.values())  # ... and seen with others
    assert all(is_heldout(s, a) for s, a in HELDOUT_COMBOS)
    assert not any(is_heldout(s, a) for s, a in TRAIN_COMBOS)
    assert not is_heldout("robot", None)
    assert sorted(TABLE_COMBOS + TUNE_COMBOS) == sorted(HELDOUT_COMBOS)
    for half in (TABLE_COMBOS, TUNE_COMBOS):  # each half holds every subject and every action once
        assert sorted(s for s, _ in half) == sorted(SUBJECT_NAMES)
        assert sorted(a for _, a in half) == sorted(ACTIONS)


def test_sample_pose_is_seeded_jittered_and_bounded():
    first = sample_pose("kicking", np.random.default_rng(5))
    assert first == sample_pose("kicking", np.random.default_rng(5))
    assert first != sample_pose("kicking", np.random.default_rng(6))
    rng = np.random.default_rng(0)
    for action in (None, *ACTIONS):
        mean = mean_pose(action)
        for _ in range(20):
            pose = sample_pose(action, rng)
            deltas = [abs(getattr(pose, j) - getattr(mean, j)) for j in JOINTS]
            assert max(deltas) <= ANGLE_JITTER_MAX
            assert 0.9 <= pose.scale <= 1.1 and abs(pose.dx) <= 3 and abs(pose.dy) <= 2
    assert sample_pose("standing", np.random.default_rng(1)) == sample_pose(None, np.random.default_rng(1))


def test_sequence_poses_move_smoothly_from_standing_to_the_action():
    poses = sequence_poses("raising both arms", 9, np.random.default_rng(0))
    assert len(poses) == 9
    shoulders = [p.left_shoulder for p in poses]
    assert shoulders[0] < 40 and shoulders[-1] > 120
    assert all(b >= a for a, b in zip(shoulders, shoulders[1:], strict=False))
    steps = [
        max(abs(getattr(a, f.name) - getattr(b, f.name)) for f in fields(Pose))
        for a, b in zip(poses, poses[1:], strict=False)
    ]
    assert max(steps) < 30
    assert len(sequence_poses("waving", 1, np.random.default_rng(0))) == 1
    with pytest.raises(ConfigError):
        sequence_poses("waving", 0, np.random.default_rng(0))


def test_subject_rejects_unknown_parts():
    with pytest.raises(ConfigError, match="unknown parts"):
        Subject("thing", (0, 0, 0), (0, 0, 0), "star")
