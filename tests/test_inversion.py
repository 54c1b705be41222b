"""DDIM inversion (``--driving-inversion``): the math against its closed form, a round trip through the real
sampler on a tiny pipeline, and the settings' one-line errors."""

import pytest
import torch

from imposter.errors import ConfigError
from imposter.inversion import ddim_inversion, epsilon

ALPHAS = {None: 1.0, 1: 0.99, 21: 0.9, 41: 0.6, 61: 0.3}


def test_with_the_true_noise_inversion_lands_on_the_forward_process():
    """If the model predicts the very noise that made the latents, every inverse step stays on
    sqrt(a) x0 + sqrt(1 - a) eps: the end is the forward process at the last timestep, exactly."""
    generator = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)
    calls = []
    inverted = ddim_inversion(
        lambda z, t: calls.append(t) or noise, clean, [1, 21, 41, 61], lambda t: ALPHAS[t]
    )
    torch.testing.assert_close(inverted, 0.3**0.5 * clean + 0.7**0.5 * noise)
    assert calls == [1, 21, 41, 61]


def test_v_prediction_is_read_as_its_noise():
    latents, noise, clean, a = torch.randn(3), torch.randn(3), torch.randn(3), 0.7
    latents = a**0.5 * clean + (1 - a) ** 0.5 * noise
    v = a**0.5 * noise - (1 - a) ** 0.5 * clean
    torch.testing.assert_close(epsilon(v, latents, a, "v_prediction"), noise)
    with pytest.raises(ValueError, match="epsilon or v"):
        epsilon(v, latents, a, "sample")


def test_inverted_then_sampled_with_the_same_caption_comes_back(engine):
    """On a tiny SD pipeline: the driving latents inverted to step 10 of 20, then DDIM with the same caption
    and no guidance, come back far closer than from fresh noise at the same strength (SDEdit)."""
    from PIL import Image

    from imposter.config import SamplingConfig
    from imposter.families.base import SamplingPlan

    picture = Image.new("RGB", (64, 64), (200, 40, 40))
    picture.paste((20, 200, 60), (16, 8, 40, 56))
    pair = engine.prepare(picture, "a dog", picture, "a cat jumping", height=64, width=64)
    conditioning = engine.conditioning(pair, pair.driving_prompt)
    family, pipe, latents = engine.family, engine.pipe, pair.driving_latents
    sampling = SamplingConfig(steps=20, k=0, amp_scale=0.0, phase_scale=0.0, guidance_scale=1.0)
    plan = SamplingPlan(lambda i: conditioning, conditioning, sampling, progress=False, start=10)
    inverted = family.inverted_start(pipe, latents, conditioning, 20, 10)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    noised = family.noised_start(pipe, latents, noise, 20, 10)
    back = family.sample(pipe, inverted, plan)
    fresh = family.sample(pipe, noised, plan)
    assert (back - latents).abs().mean() < 0.5 * (fresh - latents).abs().mean()


def test_inversion_needs_a_strength_and_a_unet():
    from imposter.config import SamplingConfig
    from imposter.families import get_family

    with pytest.raises(ConfigError, match="--driving-inversion inverts .* give --driving-strength"):
        SamplingConfig(driving_inversion=True).validate()
    SamplingConfig(driving_inversion=True, driving_strength=0.6).validate()
    with pytest.raises(ConfigError, match="UNet families"):
        get_family("flux").predict_noise(None, torch.zeros(1), 1, None)
