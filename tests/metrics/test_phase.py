import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import random_image, random_items

from imposter.metrics.phase import PhaseScore, phase_pixels, phase_score, phase_scores


def numpy_phase_score(driving: np.ndarray, generated: np.ndarray) -> float:
    """The authors' recipe written again with numpy: |angle(FFT2)| per channel, flattened, cosine."""
    a = np.abs(np.angle(np.fft.fft2(driving, axes=(0, 1)))).ravel()
    b = np.abs(np.angle(np.fft.fft2(generated, axes=(0, 1)))).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_identical_images_score_one():
    image = np.random.default_rng(0).random((16, 12, 3))
    assert phase_score(image, image) == pytest.approx(1.0)


def test_two_by_two_impulses_by_hand():
    # one-pixel impulses have real spectra of +-1, so |phase| is 0 or pi:
    # at (0, 1): F = [[1, -1], [1, -1]] -> [0, pi, 0, pi]; at (1, 1): F = [[1, -1], [-1, 1]] -> [0, pi, pi, 0]
    one = np.array([[0.0, 1.0], [0.0, 0.0]])
    other = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert phase_score(one, other) == pytest.approx(0.5)  # pi^2 / (sqrt(2) pi)^2


def test_shifted_impulses_by_hand():
    # [0, 1, 0, 0] -> F_k = exp(-i pi k / 2): |phase| = [0, pi/2, pi, pi/2]
    # [0, 0, 1, 0] -> F_k = (-1)^k:            |phase| = [0, pi, 0, pi]
    # cosine = pi^2 / (pi sqrt(3/2) * pi sqrt(2)) = 1 / sqrt(3)
    assert phase_score(np.array([[0.0, 1, 0, 0]]), np.array([[0.0, 0, 1, 0]])) == pytest.approx(
        1 / math.sqrt(3)
    )


def test_matches_an_independent_numpy_computation():
    rng = np.random.default_rng(1)
    shared = rng.random((20, 24, 3))  # so that the score is well above the 3/4 floor
    driving, generated = shared + 0.1 * rng.random((20, 24, 3)), shared + 0.1 * rng.random((20, 24, 3))
    assert phase_score(driving, generated) == pytest.approx(numpy_phase_score(driving, generated), abs=1e-12)
    assert phase_score(driving, generated) > 0.8


def test_a_constant_image_has_zero_phase_and_scores_zero():
    # at a power-of-two size the FFT of a constant is exactly DC alone, whose phase is 0
    constant = np.full((8, 8, 3), 0.3)
    assert phase_score(constant, np.random.default_rng(2).random((8, 8, 3))) == 0.0


def test_independent_noise_scores_three_quarters():
    # |phase| of unrelated spectra is about uniform on [0, pi]: E[xy] / E[x^2] = (pi/2)^2 / (pi^2/3) = 3/4
    rng = np.random.default_rng(3)
    assert phase_score(rng.random((64, 64, 3)), rng.random((64, 64, 3))) == pytest.approx(0.75, abs=0.01)


def test_blind_to_positive_scaling_and_point_reflection():
    image = np.random.default_rng(4).random((16, 16, 3))
    assert phase_score(image, 0.2 * image) == pytest.approx(1.0)
    # negating the phase of a real image = reflecting it through pixel (0, 0), circularly
    reflected = np.roll(image[::-1, ::-1], shift=(1, 1), axis=(0, 1))
    assert not np.allclose(reflected, image)
    assert phase_score(image, reflected) == pytest.approx(1.0)


def test_batched_scores_match_single_scores_and_accept_tensors():
    rng = np.random.default_rng(5)
    driving, generated = rng.random((3, 8, 8, 3)), rng.random((3, 8, 8, 3))
    batched = phase_scores(torch.from_numpy(driving).float(), torch.from_numpy(generated).float())
    assert batched.shape == (3,)
    singles = [phase_score(d, g) for d, g in zip(driving, generated, strict=True)]
    assert batched.tolist() == pytest.approx(singles, abs=1e-5)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        phase_scores(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 4, 3)))


def test_pixels_are_rgb_in_unit_range_resized_bicubic():
    image = random_image(0, (40, 30)).convert("L")
    pixels = phase_pixels(image, size=16)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == torch.float32
    expected = np.asarray(image.convert("RGB").resize((16, 16), Image.BICUBIC)) / 255.0
    assert pixels.numpy() == pytest.approx(expected, abs=1e-6)


def test_metric_compares_driving_with_generated_at_512():
    items = random_items(3, (40, 40))
    items[0] = dataclasses.replace(items[0], generated=items[0].driving)
    scores = [s["phase"] for s in PhaseScore(batch_size=2).score(items)]
    assert scores[0] == pytest.approx(1.0, abs=1e-12)
    expected = numpy_phase_score(
        phase_pixels(items[1].driving).numpy(), phase_pixels(items[1].generated).numpy()
    )
    assert scores[1] == pytest.approx(expected, abs=1e-5)
    assert [s["phase"] for s in PhaseScore(batch_size=1).score(items)] == pytest.approx(scores, abs=1e-6)
