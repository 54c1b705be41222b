"""The figure mask, mask IoU and the colour histograms."""

import numpy as np
import pytest
from PIL import Image

from imposter.toyworld.figures import (
    color_histogram,
    figure_mask,
    histogram_similarity,
    mask_iou,
)
from imposter.toyworld.render import render
from imposter.toyworld.world import BACKGROUND, sample_pose


def test_figure_mask_is_exact_on_a_drawn_square():
    image = Image.new("RGB", (8, 8), BACKGROUND)
    image.paste((200, 30, 30), (2, 3, 5, 7))
    mask = figure_mask(image)
    assert mask.sum() == 12 and mask[3:7, 2:5].all()


def test_mask_iou_on_hand_made_masks():
    first, second = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    first[:2] = True  # 8 pixels
    second[1:3] = True  # 8 pixels, 4 shared
    assert mask_iou(first, second) == pytest.approx(4 / 12)
    assert mask_iou(first, first) == 1.0
    assert mask_iou(first, ~first) == 0.0
    assert mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


def test_color_histogram_is_normalized_and_empty_for_a_blank_image():
    assert color_histogram(
        render("robot", sample_pose(None, np.random.default_rng(0)))
    ).sum() == pytest.approx(1)
    blank = color_histogram(Image.new("RGB", (64, 64), BACKGROUND))
    assert blank.sum() == 0 and histogram_similarity(blank, blank) == 0.0
