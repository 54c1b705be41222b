"""The world's subject/action classifier: the augmentations, loading, and the shipped one's accuracy."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import ImageFilter

from imposter.errors import ModelLoadError
from imposter.toyworld.classifier import (
    LABELS_ACTION,
    PARTS,
    ClassifierConfig,
    ToyClassifier,
    _gaussian_blur,
    augment,
    chimera,
    load_classifier,
    load_classifier_weights,
    predict,
    render_chimeras,
    render_labelled,
    save_classifier,
)
from imposter.toyworld.render import render
from imposter.toyworld.world import SUBJECT_NAMES, get_subject, sample_pose


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


def test_labelled_renders_cover_every_subject_and_action():
    images, subjects, actions = render_labelled(
        len(SUBJECT_NAMES) * len(LABELS_ACTION), seed=3, progress=False
    )
    assert images.shape[1:] == (64, 64, 3)
    assert {(s, a) for s, a in zip(subjects, actions, strict=True)} == {
        (s, a) for s in range(len(SUBJECT_NAMES)) for a in range(len(LABELS_ACTION))
    }


def test_chimeras_take_whole_parts_from_two_subjects_and_say_so_in_their_labels():
    robot, bird = get_subject("red robot"), get_subject("blue bird")
    mixed = chimera(robot, bird, [True, False, True])  # bird's colours and body, robot's marks
    assert (mixed.main, mixed.accent, mixed.body) == (bird.main, bird.accent, bird.body)
    assert (mixed.head, mixed.pattern, mixed.accessories) == (robot.head, robot.pattern, robot.accessories)
    assert chimera(robot, bird, [False] * len(PARTS)) == robot
    images, labels, actions = render_chimeras(30, seed=2, progress=False)
    assert images.shape == (30, 64, 64, 3) and np.allclose(labels.sum(axis=1), 1)
    assert set(np.round(labels[labels > 0] * 3).astype(int)) <= {1, 2}  # every chimera is really mixed
    assert (np.count_nonzero(labels, axis=1) == 2).all()


def test_save_and_load_round_trip_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = ToyClassifier((8, 8, 8, 8)).eval()
    save_classifier(model, replace(ClassifierConfig(), channels=(8, 8, 8, 8)), {"note": 1}, tmp_path)
    loaded = load_classifier_weights(tmp_path)
    image = render("red robot", sample_pose(None, np.random.default_rng(0)))
    assert np.allclose(predict(model, [image])[0], predict(loaded, [image])[0])
    with pytest.raises(ModelLoadError, match="no toy classifier"):
        load_classifier_weights(tmp_path / "elsewhere")
    meta = json.loads((tmp_path / "classifier" / "config.json").read_text())
    meta["subjects"] = ["someone else"]
    (tmp_path / "classifier" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="another cast"):
        load_classifier_weights(tmp_path)


def test_shipped_classifier_reads_fresh_and_blurred_renders():
    """Renders from another seed than its training and its own evaluation; blur as generated images have."""
    model = load_classifier()
    images, subjects, actions = render_labelled(330, seed=12345, progress=False)
    from PIL import Image

    pictures = [Image.fromarray(image) for image in images]
    for blur in (0.0, 0.8):
        shown = [p.filter(ImageFilter.GaussianBlur(blur)) if blur else p for p in pictures]
        subject_probs, action_probs = predict(model, shown)
        assert (subject_probs.argmax(1) == subjects).mean() >= 0.98, blur
        assert (action_probs.argmax(1) == actions).mean() >= 0.93, blur


def test_shipped_classifier_sees_shape_not_only_colour():
    """The red robot's colours on the blue bird's head, accessories and body: colour identity would call it
    the robot (a classifier trained on plain renders said 0.75); two of its three parts are the bird's."""
    robot, bird = get_subject("red robot"), get_subject("blue bird")
    hybrid = replace(bird, name="red bird", main=robot.main, accent=robot.accent)
    rng = np.random.default_rng(5)
    images = [render(hybrid, sample_pose(None, rng)) for _ in range(10)]
    subject_probs, _ = predict(load_classifier(), images)
    assert subject_probs[:, SUBJECT_NAMES.index("red robot")].mean() < 0.5
