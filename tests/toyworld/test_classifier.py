"""The world's recognizer (class, action, instance): augmentations, losses, loading, the shipped one."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from imposter.errors import ModelLoadError
from imposter.toyworld.classifier import (
    DISTRACTORS,
    LABELS_ACTION,
    PARTS,
    ClassifierConfig,
    ToyClassifier,
    _gaussian_blur,
    augment,
    chimera,
    contrastive_loss,
    instance_scores,
    load_classifier,
    load_classifier_weights,
    outputs,
    predict,
    render_chimeras,
    render_views,
    save_classifier,
)
from imposter.toyworld.render import render
from imposter.toyworld.world import SUBJECT_NAMES, get_subject, instance, sample_pose


def test_blur_with_sigma_zero_is_the_identity_and_blur_keeps_the_mean():
    pixels = torch.rand(3, 3, 16, 16) * 2 - 1
    same = _gaussian_blur(pixels, torch.zeros(3))
    assert torch.allclose(same, pixels, atol=1e-6)
    blurred = _gaussian_blur(pixels, torch.full((3,), 1.5))
    assert blurred.std() < pixels.std()
    assert torch.allclose(blurred.mean(), pixels.mean(), atol=0.02)


def test_augment_is_seeded_and_bounded():
    pixels = torch.rand(4, 3, 64, 64) * 2 - 1
    config = ClassifierConfig()
    first = augment(pixels, config, torch.Generator().manual_seed(0))
    again = augment(pixels, config, torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and first.abs().max() <= 1
    assert not torch.equal(first, pixels)


def test_views_show_one_instance_in_two_poses_and_cover_every_class():
    views, subjects, actions = render_views(20, seed=3, progress=False)
    assert views.shape == (2, 20, 64, 64, 3) and actions.shape == (2, 20)
    assert sorted(set(subjects)) == list(range(len(SUBJECT_NAMES)))
    assert not np.array_equal(views[0][0], views[1][0])
    again, _, _ = render_views(20, seed=3, stream="classifier-eval", progress=False)
    assert not np.array_equal(again[0][0], views[0][0])  # another stream, other instances


def test_chimeras_take_whole_parts_from_two_classes_and_say_so_in_their_labels():
    robot, bird = instance("robot", "classifier", 9, 0), instance("bird", "classifier", 9, 1)
    mixed = chimera(robot, bird, [True, False])  # the bird's head and accessories on the robot's body
    assert (mixed.head, mixed.accessories, mixed.body) == (bird.head, bird.accessories, robot.body)
    assert (mixed.main, mixed.accent) == (robot.main, robot.accent)
    assert chimera(robot, bird, [False] * len(PARTS)) == robot
    images, labels, actions = render_chimeras(30, seed=2, progress=False)
    assert images.shape == (30, 64, 64, 3) and np.allclose(labels.sum(axis=1), 1)
    assert (np.count_nonzero(labels, axis=1) == 2).all() and set(labels[labels > 0]) == {0.5}


def test_contrastive_loss_is_low_for_matched_views_and_high_for_swapped_ones():
    torch.manual_seed(0)
    first = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
    matched = contrastive_loss(first, first, 0.1)
    shuffled = contrastive_loss(first, first.roll(1, dims=0), 0.1)
    assert matched < 0.5 < shuffled


def test_instance_score_is_near_one_for_the_source_and_near_chance_for_a_distractor():
    torch.manual_seed(0)
    model = ToyClassifier((8, 8, 8, 8), embedding=16).eval()
    distractor_image = render(
        instance("dog", "distractors", 0, 0), sample_pose(None, np.random.default_rng(0))
    )
    _, _, embeddings = outputs(model, [distractor_image])
    dog = SUBJECT_NAMES.index("dog")
    own = instance_scores(model, embeddings, embeddings, [dog])  # the image against itself
    assert 0 < own[0] <= 1 and 1 / (DISTRACTORS + 1) <= own[0]
    opposite = instance_scores(model, embeddings, -embeddings, [dog])  # a source pointing the other way
    assert opposite[0] < own[0]


def test_save_and_load_round_trip_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = ToyClassifier((8, 8, 8, 8)).eval()
    save_classifier(model, replace(ClassifierConfig(), channels=(8, 8, 8, 8)), {"note": 1}, tmp_path)
    loaded = load_classifier_weights(tmp_path)
    image = render("robot", sample_pose(None, np.random.default_rng(0)))
    for ours, theirs in zip(outputs(model, [image]), outputs(loaded, [image]), strict=True):
        assert np.allclose(ours, theirs, atol=1e-6)
    assert loaded.temperature == ClassifierConfig.temperature
    with pytest.raises(ModelLoadError, match="no toy classifier"):
        load_classifier_weights(tmp_path / "elsewhere")
    meta = json.loads((tmp_path / "classifier" / "config.json").read_text())
    meta["subjects"] = ["someone else"]
    (tmp_path / "classifier" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="another cast"):
        load_classifier_weights(tmp_path)


def test_shipped_classifier_reads_fresh_instances_and_blurred_renders():
    """Instances from a stream it never saw (the pairs'); blur as generated images have."""
    model = load_classifier()
    rng = np.random.default_rng(12345)
    jobs = [(c, a) for c in range(len(SUBJECT_NAMES)) for a in range(len(LABELS_ACTION))] * 2
    pictures = [
        render(instance(SUBJECT_NAMES[c], "tune", 99, k), sample_pose(LABELS_ACTION[a], rng))
        for k, (c, a) in enumerate(jobs)
    ]
    subjects, actions = np.array([c for c, _ in jobs]), np.array([a for _, a in jobs])
    for blur in (0.0, 0.8):
        shown = [p.filter(ImageFilter.GaussianBlur(blur)) if blur else p for p in pictures]
        subject_probs, action_probs = predict(model, shown)
        assert (subject_probs.argmax(1) == subjects).mean() >= 0.95, blur
        assert (action_probs.argmax(1) == actions).mean() >= 0.90, blur


def test_shipped_classifier_tells_this_instance_from_others_of_its_class():
    """The same fresh instance in another pose scores far above another fresh instance of the class."""
    model = load_classifier()
    rng = np.random.default_rng(7)
    same, other = [], []
    for c, name in enumerate(SUBJECT_NAMES):
        first, second = instance(name, "table", 99, 0), instance(name, "table", 99, 1)
        images = [render(first, sample_pose(None, rng)), render(first, sample_pose("waving", rng))]
        images.append(render(second, sample_pose("waving", rng)))
        _, _, embeddings = outputs(model, [Image.fromarray(np.asarray(i)) for i in images])
        same.append(instance_scores(model, embeddings[1:2], embeddings[:1], [c])[0])
        other.append(instance_scores(model, embeddings[2:3], embeddings[:1], [c])[0])
    assert np.mean(same) >= 0.6 and np.mean(other) <= 0.2, (np.mean(same), np.mean(other))


def test_shipped_classifier_sees_shape_not_only_colour():
    """A bird's head, accessories and body in the robot's colours is a bird: colours say nothing of the class."""
    robot, bird = get_subject("robot"), get_subject("bird")
    hybrid = replace(bird, main=robot.main, accent=robot.accent)
    rng = np.random.default_rng(5)
    images = [render(hybrid, sample_pose(None, rng)) for _ in range(10)]
    subject_probs, _ = predict(load_classifier(), images)
    assert subject_probs[:, SUBJECT_NAMES.index("bird")].mean() > 0.8
