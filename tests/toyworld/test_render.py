"""The renderer: size, purity, framing and speed."""

import time

import numpy as np

from imposter.toyworld.classify import figure_mask
from imposter.toyworld.render import render
from imposter.toyworld.world import ACTIONS, BACKGROUND, SUBJECTS, sample_pose


def test_render_is_a_pure_64px_rgb_image():
    pose = sample_pose("dancing", np.random.default_rng(0))
    image = render("blue bird", pose)
    assert image.size == (64, 64) and image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(render(SUBJECTS[1], pose)))
    assert image.getpixel((0, 0)) == BACKGROUND


def test_standing_figure_fills_about_half_the_height():
    rng = np.random.default_rng(1)
    for subject in SUBJECTS:
        rows = np.nonzero(figure_mask(render(subject, sample_pose(None, rng))).any(axis=1))[0]
        assert 0.4 * 64 <= rows.max() - rows.min() + 1 <= 0.7 * 64, subject.name


def test_every_pose_stays_inside_the_frame():
    rng = np.random.default_rng(2)
    for k in range(3 * len(SUBJECTS)):
        for action in (None, *ACTIONS):
            mask = figure_mask(render(SUBJECTS[k % len(SUBJECTS)], sample_pose(action, rng)))
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), action


def test_render_is_fast():
    rng = np.random.default_rng(3)
    poses = [sample_pose(ACTIONS[k % len(ACTIONS)], rng) for k in range(100)]
    start = time.perf_counter()
    for k, pose in enumerate(poses):
        render(SUBJECTS[k % len(SUBJECTS)], pose)
    assert (time.perf_counter() - start) / len(poses) < 0.01  # about 0.5 ms on one core
