"""Frequency guidance: the gradient is real, correct, and lowers the losses it targets."""

import pytest
import torch
from torch.autograd import Variable

from imposter.guidance import (
    FrequencyTargets,
    amplitude,
    amplitude_loss,
    frequency_guidance_step,
    guidance_losses,
    low_pass_mask,
    phase,
    phase_loss,
)


def latents(seed, shape=(2, 4, 8, 8), dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.fixture
def refs():
    return latents(1, (1, 4, 8, 8)), latents(2, (1, 4, 8, 8))


def finite_difference(fn, z, direction, eps=1e-6):
    return (fn(z + eps * direction) - fn(z - eps * direction)) / (2 * eps)


@pytest.mark.parametrize("normalization", ["sum", "paper"])
@pytest.mark.parametrize("term", ["amplitude", "phase-cos", "phase-abs"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_finite_differences(refs, normalization, term, seed):
    source, driving = refs
    if term == "amplitude":
        target = amplitude(source, normalization)

        def loss(z):
            return amplitude_loss(z, target, normalization).sum()
    else:
        target = phase(driving, normalization)
        distance = term.split("-")[1]

        def loss(z):
            return phase_loss(z, target, distance, normalization).sum()

    z = latents(10 + seed).requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(z), z)
    direction = latents(20 + seed)
    numeric = finite_difference(loss, z.detach(), direction)
    analytic = (grad * direction).sum()
    assert torch.isclose(analytic, numeric, rtol=1e-5, atol=1e-8), (analytic.item(), numeric.item())


@pytest.mark.parametrize("distance", ["cos", "abs"])
def test_step_is_the_negative_gradient_of_the_weighted_losses(refs, distance):
    source, driving = refs
    targets = FrequencyTargets.from_latents(source, driving)
    z = latents(3)
    s_a, s_p = 0.01, 0.02
    stepped = frequency_guidance_step(z, targets, s_a, s_p, distance)
    zg = z.clone().requires_grad_(True)
    g_a, g_p = guidance_losses(zg, targets, distance)
    (grad,) = torch.autograd.grad(s_a * g_a.sum() + s_p * g_p.sum(), zg)
    torch.testing.assert_close(stepped, z - grad)
    assert not torch.equal(stepped, z)


@pytest.mark.parametrize("normalization", ["sum", "paper"])
def test_small_amplitude_step_lowers_amplitude_loss(refs, normalization):
    source, driving = refs
    targets = FrequencyTargets.from_latents(source, driving, normalization)
    z = latents(4)
    before, _ = guidance_losses(z, targets)
    after, _ = guidance_losses(frequency_guidance_step(z, targets, 1e-3, 0.0), targets)
    assert (after < before).all()


@pytest.mark.parametrize("distance", ["cos", "abs"])
@pytest.mark.parametrize("normalization", ["sum", "paper"])
def test_small_phase_step_lowers_phase_loss(refs, distance, normalization):
    source, driving = refs
    targets = FrequencyTargets.from_latents(source, driving, normalization)
    z = latents(5)
    scale = 1e-4 if normalization == "sum" else 1e-1
    _, before = guidance_losses(z, targets, distance)
    _, after = guidance_losses(frequency_guidance_step(z, targets, 0.0, scale, distance), targets, distance)
    assert (after < before).all()


def test_zero_scales_leave_latents_untouched(refs):
    targets = FrequencyTargets.from_latents(*refs)
    z = latents(6)
    assert frequency_guidance_step(z, targets, 0.0, 0.0) is z


def test_half_step_on_amplitude_swaps_in_the_source_amplitude(refs):
    """With the orthonormal FFT and a summed loss, s_a = 1/2 replaces |F(z)| by the source's |F|."""
    source, driving = refs
    targets = FrequencyTargets.from_latents(source, driving)
    stepped = frequency_guidance_step(latents(7), targets, 0.5, 0.0)
    torch.testing.assert_close(amplitude(stepped), amplitude(source).expand_as(stepped))
    # and the phase of z is kept
    torch.testing.assert_close(torch.cos(phase(stepped) - phase(latents(7))), torch.ones_like(stepped))


def test_samples_of_a_batch_are_guided_independently(refs):
    targets = FrequencyTargets.from_latents(*refs)
    z = latents(8, (3, 4, 8, 8))
    together = frequency_guidance_step(z, targets, 0.1, 1e-3)
    alone = torch.cat([frequency_guidance_step(z[i : i + 1], targets, 0.1, 1e-3) for i in range(3)])
    torch.testing.assert_close(together, alone)


def test_paper_scales_in_paper_normalization_barely_move_sd_latents():
    """The paper's s_a = 1e-6, s_p = 1e-3 under the authors' normalization: ~1e-7 per element on 4x64x64."""
    source, driving, z = (latents(s, (1, 4, 64, 64), torch.float32) for s in (1, 2, 3))
    targets = FrequencyTargets.from_latents(source, driving, "paper")
    moved = (frequency_guidance_step(z, targets, 1e-6, 1e-3, "abs") - z).abs().max()
    assert 0 < moved < 1e-5


def test_the_authors_rewrapped_loss_gives_no_gradient(refs):
    """What the released code does (loss wrapped in a fresh Variable under no_grad): latents never move."""
    source, driving = refs
    z = latents(9).float().requires_grad_(True)
    with torch.no_grad():
        loss = torch.nn.functional.mse_loss(
            torch.fft.fft2(source.float().expand_as(z)).angle().abs(), torch.fft.fft2(z).angle().abs()
        )
    wrapped = Variable(loss, requires_grad=True)
    wrapped.backward()
    assert z.grad is None  # the authors' guidance is a no-op ...
    targets = FrequencyTargets.from_latents(source, driving)
    assert not torch.equal(
        frequency_guidance_step(z.detach(), targets, 0.0, 1e-3), z.detach()
    )  # ... ours is not


def test_phase_gradient_is_finite_where_the_spectrum_vanishes():
    z = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    loss = phase_loss(z, torch.zeros(1, 1, 4, 4, dtype=torch.float64)).sum()
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(grad).all()


def test_missing_target_is_an_error():
    targets = FrequencyTargets.from_latents(None, latents(1, (1, 4, 8, 8)))
    with pytest.raises(ValueError, match="amplitude"):
        frequency_guidance_step(latents(2), targets, 0.1, 0.0)


def test_low_pass_mask_keeps_the_low_frequencies_symmetrically():
    assert low_pass_mask(8, 8, None) is None
    mask = low_pass_mask(8, 8, 0.2)
    assert mask[0, 0] == 1 and mask[0, 1] == 1 and mask[4, 4] == 0  # DC and 1/8 kept, Nyquist dropped
    assert torch.equal(mask, torch.roll(torch.flip(mask, (0, 1)), (1, 1), (0, 1)))  # f and -f together
    assert low_pass_mask(8, 8, 0.75).sum() == 64


def test_phase_guidance_with_a_cutoff_leaves_the_high_frequencies_alone():
    source, driving = latents(10), latents(11)
    targets = FrequencyTargets.from_latents(source, driving, phase_cutoff=0.2)
    start = latents(12)
    moved = frequency_guidance_step(start, targets, amp_scale=0.0, phase_scale=0.5)
    change = torch.fft.fft2(moved - start, norm="ortho").abs()
    high = low_pass_mask(8, 8, 0.2) == 0
    assert change[..., high].max() < 1e-9 < change[..., ~high].max()
    everything = FrequencyTargets.from_latents(source, driving)
    full = torch.fft.fft2(frequency_guidance_step(start, everything, 0.0, 0.5) - start, norm="ortho").abs()
    assert full[..., high].max() > 1e-3
