"""SD on a tiny pipeline beyond the shared contract (tests/families/test_contract.py): eta, reproducible
fine-tuning, what each method trains and samples with."""

import dataclasses

import numpy as np
import pytest
import torch

from imposter import FinetuneConfig, SamplingConfig
from imposter.testing import random_components, random_image

FAST = SamplingConfig(steps=8, k=2, amp_scale=0.05, phase_scale=0.05)


def pixels(images):
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


@pytest.fixture(scope="module")
def pair(engine):
    return engine.prepare(
        random_image(seed=1), "a dog", random_image(seed=2), "a cat drinking water from a mug"
    )


@pytest.fixture(scope="module")
def learned(engine, pair):
    return engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=15), progress=False)


def unet_state(engine):
    return {k: v.clone() for k, v in engine.denoiser.state_dict().items()}


def test_prepare_composes_the_target_prompt_and_caches_latents(pair):
    assert pair.target_prompt == "a dog drinking water from a mug"
    assert pair.size == (16, 16)
    assert pair.source_latents.shape == pair.driving_latents.shape == (1, 4, 8, 8)
    assert {"", "a dog", "a cat drinking water from a mug", pair.target_prompt} <= set(pair.embeds)


def test_eta_above_zero_is_reproducible_alone_or_in_a_batch(engine, pair, learned):
    noisy = dataclasses.replace(FAST, eta=1.0)
    first = pixels(engine.generate(pair, learned, seeds=[3, 4], sampling=noisy, progress=False))
    again = pixels(engine.generate(pair, learned, seeds=[3, 4], sampling=noisy, progress=False))
    alone = pixels(engine.generate(pair, learned, seeds=[4], sampling=noisy, progress=False))
    assert np.array_equal(first, again)
    assert np.abs(alone[0] - first[1]).max() <= 1
    plain = pixels(engine.generate(pair, learned, seeds=[3, 4], sampling=FAST, progress=False))
    assert np.abs(plain - first).max() > 1  # eta's noise is there


def test_finetuning_is_reproducible_from_its_seed(engine, pair, learned):
    again = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=15), progress=False)
    assert all(torch.equal(learned.state[k], again.state[k]) for k in learned.state)
    other = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=15, seed=1), progress=False)
    assert any(not torch.equal(learned.state[k], other.state[k]) for k in learned.state)


def test_authors_method_trains_every_weight_and_restores_the_model(engine, pair, tmp_path):
    before = unet_state(engine)
    learned = engine.personalize(pair, "imposter-authors", FinetuneConfig(steps=2), progress=False)
    assert all(torch.equal(before[k], v) for k, v in engine.denoiser.state_dict().items())
    changed = [k for k in before if not torch.equal(before[k], learned.state[k])]
    assert len(changed) > 0.9 * len(before)  # full fine-tune, not LoRA
    assert len(learned.info["losses"]) == 4  # two updates per iteration
    assert learned.info["finetune"]["learning_rate"] == 2e-6
    images = engine.generate(pair, learned, seeds=[0], sampling=SamplingConfig(steps=8), progress=False)
    assert all(torch.equal(before[k], v) for k, v in engine.denoiser.state_dict().items())
    learned.save(tmp_path / "unet")
    reloaded = engine.load_personalization(tmp_path / "unet", "imposter-authors")
    again = engine.generate(pair, reloaded, seeds=[0], sampling=SamplingConfig(steps=8), progress=False)
    assert np.array_equal(pixels(images), pixels(again))
    from diffusers import UNet2DConditionModel

    saved = UNet2DConditionModel.from_pretrained(tmp_path / "unet").state_dict()  # a UNet checkpoint
    assert saved.keys() == learned.state.keys()
    assert all(torch.equal(saved[k], learned.state[k]) for k in saved)


def test_method_settings_are_fixed_by_name():
    from imposter.methods import METHOD_NAMES, get_method
    from imposter.settings import resolve

    base = SamplingConfig(k=5, amp_scale=0.1, phase_scale=0.2)
    assert get_method("baseline++").sampling_config(base) == SamplingConfig(
        k=0, amp_scale=0.0, phase_scale=0.0
    )
    assert get_method("imposter-k0").sampling_config(base).k == 0
    assert get_method("imposter-no-phase").sampling_config(base).phase_scale == 0
    assert get_method("imposter-no-amp").sampling_config(base).amp_scale == 0
    assert get_method("imposter-authors").sampling_config(base).k == 6
    assert get_method("imposter-guided").sampling_config(base) == base
    variant = SamplingConfig(k=2, phase_cutoff=0.1, guidance_until=0.5, guidance_space="denoised")
    paper = get_method("imposter-paper").sampling_config(variant)  # the recipe is fixed, the scales are not
    assert (paper.phase_cutoff, paper.guidance_until, paper.guidance_space) == (None, 1.0, "noisy")
    assert (paper.k, paper.amp_scale, paper.phase_scale) == (2, variant.amp_scale, variant.phase_scale)
    defaults = resolve(get_method("imposter-paper"), None)[1]
    assert (defaults.amp_scale, defaults.phase_scale, defaults.phase_cutoff) == (0.03, 0.1, None)
    assert {"imposter-guided", "imposter-paper", "baseline++", "imposter-authors"} <= set(METHOD_NAMES)


def test_v_prediction_models_train_on_velocity(tmp_path):
    from imposter.families.losses import denoising_loss, noise_scheduler_for

    parts = random_components("sd", tmp_path, prediction_type="v_prediction")
    scheduler = noise_scheduler_for(parts["scheduler"])
    latents, noise = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    t = torch.tensor([500])
    embeds = torch.randn(1, 77, 32)
    loss = denoising_loss(parts["unet"], scheduler, latents, embeds, noise, t)
    noisy = scheduler.add_noise(latents, noise, t)
    out = parts["unet"](noisy, t, encoder_hidden_states=embeds).sample
    assert loss.item() == pytest.approx(
        torch.nn.functional.mse_loss(out, scheduler.get_velocity(latents, noise, t)).item()
    )


def test_the_default_is_retarget_then_render_and_its_old_name_still_works():
    from imposter.methods import METHOD_NAMES, get_method

    assert get_method("imposter").needs_keypoints and get_method("imposter").finetune_kind == "none"
    assert get_method("imposter-retarget").name == "imposter"  # its name until 2026-12-05
    assert get_method("imposter-guided").finetune_kind == get_method("baseline++").finetune_kind == "lora"
    assert "imposter-retarget" not in METHOD_NAMES
