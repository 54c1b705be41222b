"""Files as users have them: 16-bit PNGs, animated GIFs; grids that show small results."""

import warnings

import numpy as np
import pytest
from PIL import Image

from imposter.images import image_grid, load_image


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_white(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "scan.png")  # a 16-bit grayscale PNG
    with pytest.warns(UserWarning, match="scaled to 8 bits"):
        image = load_image(tmp_path / "scan.png", "source")
    got = np.asarray(image)[0, :, 0].astype(int)
    assert image.mode == "RGB"
    assert np.abs(got - np.round(ramp[0] / 257)).max() <= 1
    assert (got == 255).mean() < 0.05  # PIL's own conversion makes 99% of it white


def test_an_animated_gif_warns_that_its_first_frame_is_used(tmp_path):
    frames = [Image.new("RGB", (40, 40), color) for color in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    frames[0].save(tmp_path / "dance.gif", save_all=True, append_images=frames[1:], duration=100)
    with pytest.warns(UserWarning, match=r"animated \(3 frames\); using its first frame"):
        image = load_image(tmp_path / "dance.gif", "driving")
    red, green, _ = np.asarray(image).reshape(-1, 3).mean(0)
    assert red > 150 and green < 50
    Image.new("RGB", (40, 40)).save(tmp_path / "still.gif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(tmp_path / "still.gif", "driving")


def test_grids_enlarge_small_images_with_nearest_neighbour():
    small = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    grid = np.asarray(image_grid([[small, small]], pad=0))
    assert grid.shape == (256, 512, 3)
    assert np.array_equal(grid[::4, :256:4], np.asarray(small))  # each pixel became a 4x4 block
    assert np.array_equal(grid[1::4, 1:256:4], np.asarray(small))
    big = Image.new("RGB", (300, 300))
    assert image_grid([[big]], pad=0).size == (300, 300)
