"""SDEdit (img2img of the driving image) as a reference row."""

from dataclasses import replace

import torch

from imposter import FinetuneConfig, SamplingConfig
from imposter.methods import get_method
from imposter.methods.sdedit import start_step
from imposter.testing import random_image


def test_start_step_follows_diffusers_img2img():
    # diffusers: init_timestep = min(int(steps * strength), steps); t_start = max(steps - init_timestep, 0)
    assert start_step(50, 0.8) == 10 and start_step(50, 1.0) == 0 and start_step(50, 0.0) == 50
    assert start_step(6, 0.5) == 3


def test_sdedit_stays_near_the_driving_latents_at_low_strength_and_shares_the_lora(engine):
    pair = engine.prepare(random_image(seed=3), "a dog", random_image(seed=4), "a cat jumping")
    sdedit = get_method("sdedit")
    assert sdedit.finetune_kind == get_method("imposter-guided").finetune_kind  # one fine-tune serves both
    learned = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=1), progress=False)
    sampling = SamplingConfig(steps=6, k=0, amp_scale=0.0, phase_scale=0.0)
    noise = torch.randn((2, *pair.driving_latents.shape[1:]), generator=torch.Generator().manual_seed(0))
    distances = {}
    for strength in (0.2, 1.0):
        with learned.active(engine):
            latents = sdedit.sample(
                engine, pair, learned, noise, replace(sampling, driving_strength=strength), progress=False
            )
        assert latents.shape == noise.shape and torch.isfinite(latents).all()
        distances[strength] = (latents - pair.driving_latents).pow(2).mean().item()
    assert distances[0.2] < 0.5 * distances[1.0], distances
