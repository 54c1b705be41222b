"""The renderer: size, purity, framing, body plans and the placement rule."""

import numpy as np

from imposter.toyworld.figures import figure_mask, mask_iou
from imposter.toyworld.render import GROUND_Y, SIZE, render, skeleton
from imposter.toyworld.world import ACTIONS, BACKGROUND, BODY_TYPES, SUBJECTS, mean_pose, sample_pose


def test_render_is_a_pure_64px_rgb_image():
    pose = sample_pose("dancing", np.random.default_rng(0))
    image = render("bird", pose)
    assert image.size == (64, 64) and image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(render(SUBJECTS[1], pose)))
    assert image.getpixel((0, 0)) == BACKGROUND


def test_standing_figures_differ_in_height_by_body_type():
    rng = np.random.default_rng(1)
    heights = {}
    for subject in SUBJECTS:
        rows = np.nonzero(figure_mask(render(subject, sample_pose(None, rng))).any(axis=1))[0]
        heights[subject.name] = rows.max() - rows.min() + 1
        assert 0.35 * 64 <= heights[subject.name] <= 0.75 * 64, subject.name
    assert max(heights.values()) - min(heights.values()) >= 10, heights  # a long-limbed vs a stocky body


def test_every_subject_has_its_own_body_and_at_least_three_types_differ():
    bodies = [subject.body for subject in SUBJECTS]
    assert len(set(bodies)) == len(SUBJECTS)
    assert len(BODY_TYPES) >= 3
    legs = {name: body.thigh + body.shin for name, body in BODY_TYPES.items()}
    heads = {name: body.head_r / (body.torso_high - body.torso_low) for name, body in BODY_TYPES.items()}
    assert legs["long-limbed"] > 1.8 * legs["stocky"]
    assert heads["big-head"] > 1.5 * heads["average"]


def test_one_pose_on_two_bodies_gives_two_silhouettes():
    pose = mean_pose("raising both arms")
    robot, alien = (figure_mask(render(name, pose)) for name in ("robot", "alien"))
    assert mask_iou(robot, alien) < 0.6


def test_placement_rule_hip_on_the_center_line_lowest_point_on_the_ground():
    pose = sample_pose("kicking", np.random.default_rng(4))
    for subject in SUBJECTS:
        points = skeleton(pose, subject.body).points
        hip = points["hip"]
        assert abs(hip.real - (SIZE / 2 + pose.dx)) < 1e-9 or pose.tilt != 0
        rows = np.nonzero(figure_mask(render(subject, pose)).any(axis=1))[0]
        assert abs(rows.max() + 1 - (GROUND_Y + pose.dy)) <= 1.5, subject.name


def test_every_pose_stays_inside_the_frame():
    rng = np.random.default_rng(2)
    for k in range(3 * len(SUBJECTS)):
        for action in (None, *ACTIONS):
            mask = figure_mask(render(SUBJECTS[k % len(SUBJECTS)], sample_pose(action, rng)))
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), action


def test_a_part_map_covers_the_body_in_its_own_colours_and_follows_that_body():
    from imposter.toyworld.pairs import make_pairs
    from imposter.toyworld.render import PART_BACKGROUND, PART_COLOURS, render_part_map

    toy = make_pairs(1, 0, "tune")[0]
    part_map = np.asarray(toy.driving_pose_map)
    figure = np.any(part_map != PART_BACKGROUND, axis=-1)
    # flat colours (anti-aliased edges aside): most figure pixels are exactly one part's colour
    exact = np.zeros_like(figure)
    for colour in PART_COLOURS.values():
        exact |= np.all(part_map == colour, axis=-1)
    assert exact[figure].mean() > 0.6 and len({tuple(c) for c in part_map[exact]}) >= 8
    # it is the driving figure's body (its silhouette without accessories), not the ground truth's
    driving = figure_mask(toy.driving_image)
    assert (figure & driving).sum() / figure.sum() > 0.8
    assert mask_iou(figure, driving) > mask_iou(figure, figure_mask(toy.target_image))
    target = np.any(np.asarray(toy.target_pose_map) != PART_BACKGROUND, axis=-1)
    assert mask_iou(target, figure_mask(toy.target_image)) > mask_iou(target, driving)
    again = render_part_map(toy.driving_instance, toy.driving_pose)
    assert np.array_equal(np.asarray(again), part_map)
