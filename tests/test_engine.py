"""End to end on a tiny pipeline: fine-tune -> generate -> save -> reload, and what each method trains."""

import dataclasses

import numpy as np
import pytest
import torch
from tiny import random_image

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.guidance import FrequencyTargets, guidance_losses
from imposter.personalizations import LORA_FILE, LoraPersonalization, Personalization

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
    return engine.personalize(pair, "imposter", FinetuneConfig(steps=15), progress=False)


def unet_state(engine):
    return {k: v.clone() for k, v in engine.unet.state_dict().items()}


def test_prepare_composes_the_target_prompt_and_caches_latents(pair):
    assert pair.target_prompt == "a dog drinking water from a mug"
    assert pair.size == (16, 16)
    assert pair.source_latents.shape == pair.driving_latents.shape == (1, 4, 8, 8)
    assert {"", "a dog", "a cat drinking water from a mug", pair.target_prompt} <= set(pair.embeds)


def test_lora_finetune_trains_only_lora_and_leaves_the_model_unchanged(engine, pair):
    before = unet_state(engine)
    learned = engine.personalize(pair, "imposter", FinetuneConfig(steps=5), progress=False)
    after = engine.unet.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert learned.state and all(k.startswith("unet.") and "lora" in k for k in learned.state)
    ups = [v for k, v in learned.state.items() if "lora_B" in k or "lora.up" in k]
    assert ups and any(v.abs().sum() > 0 for v in ups)  # B starts at zero: it moved
    assert len(learned.info["losses"]) == 5


def test_same_seed_same_image_and_different_seeds_differ(engine, pair, learned):
    first = pixels(engine.generate(pair, learned, seeds=[0, 1], sampling=FAST, progress=False))
    again = pixels(engine.generate(pair, learned, seeds=[0, 1], sampling=FAST, progress=False))
    assert np.array_equal(first, again)
    assert not np.array_equal(first[0], first[1])


def test_seed_images_do_not_depend_on_batching(engine, pair, learned):
    together = pixels(engine.generate(pair, learned, seeds=[3, 4], sampling=FAST, progress=False))
    one_by_one = pixels(
        engine.generate(
            pair,
            learned,
            seeds=[3, 4],
            sampling=SamplingConfig(**{**FAST.__dict__, "batch_size": 1}),
            progress=False,
        )
    )
    assert np.abs(together - one_by_one).max() <= 1


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
    again = engine.personalize(pair, "imposter", FinetuneConfig(steps=15), progress=False)
    assert all(torch.equal(learned.state[k], again.state[k]) for k in learned.state)
    other = engine.personalize(pair, "imposter", FinetuneConfig(steps=15, seed=1), progress=False)
    assert any(not torch.equal(learned.state[k], other.state[k]) for k in learned.state)


def test_saved_adapter_reloads_and_gives_the_same_images(engine, pair, learned, tmp_path):
    learned.save(tmp_path / "adapter")
    reloaded = engine.load_personalization(tmp_path / "adapter")
    assert isinstance(reloaded, LoraPersonalization)
    a = pixels(engine.generate(pair, learned, seeds=[0], sampling=FAST, progress=False))
    b = pixels(engine.generate(pair, reloaded, seeds=[0], sampling=FAST, progress=False))
    assert np.array_equal(a, b)


class Nothing(Personalization):
    kind = "none"

    def _save_weights(self, directory):
        pass


def test_adapter_loads_with_diffusers_load_lora_weights(engine, pair, learned, tmp_path, tiny_model):
    """A stock pipeline + pipe.load_lora_weights(adapter/) gives our images (baseline++ and imposter)."""
    learned.save(tmp_path / "adapter")
    assert (tmp_path / "adapter" / LORA_FILE).exists()
    stock = ImPoster.from_pretrained(str(tiny_model), device="cpu")
    stock.pipe.load_lora_weights(str(tmp_path / "adapter"))
    stock_pair = stock.prepare(
        random_image(seed=1), pair.source_prompt, random_image(seed=2), pair.driving_prompt
    )
    for method in ("imposter", "baseline++"):
        ours = pixels(engine.generate(pair, learned, seeds=[5], sampling=FAST, method=method, progress=False))
        theirs = pixels(
            stock.generate(stock_pair, Nothing("x"), seeds=[5], sampling=FAST, method=method, progress=False)
        )
        assert np.abs(ours - theirs).max() <= 1, method
    # and diffusers' own __call__ with that LoRA equals our baseline++ (target prompt only, no guidance)
    noise = stock.initial_noise([5], stock_pair)
    theirs = stock.pipe(pair.target_prompt, latents=noise, num_inference_steps=8, guidance_scale=7.5).images
    ours = engine.generate(pair, learned, seeds=[5], sampling=FAST, method="baseline++", progress=False)
    assert np.abs(pixels(ours) - pixels(theirs)).max() <= 1


def test_guidance_changes_the_result_and_lowers_its_losses(engine, pair, learned):
    """End to end: with the phase term on, the final latents are closer in phase to the driving latents."""
    method_latents = {}
    for name, sampling in {
        "off": SamplingConfig(steps=8, k=2, amp_scale=0.0, phase_scale=0.0),
        "on": SamplingConfig(steps=8, k=2, amp_scale=0.2, phase_scale=0.2),
    }.items():
        from imposter.methods import get_method

        method = get_method("imposter")
        with learned.active(engine):
            method_latents[name] = method.sample(
                engine, pair, learned, engine.initial_noise([0, 1], pair), sampling, False
            )
    assert not torch.equal(method_latents["on"], method_latents["off"])
    targets = FrequencyTargets.from_latents(pair.source_latents, pair.driving_latents)
    amp_off, phase_off = guidance_losses(method_latents["off"], targets)
    amp_on, phase_on = guidance_losses(method_latents["on"], targets)
    assert (phase_on < phase_off).all() and (amp_on < amp_off).all()


def test_authors_method_trains_every_weight_and_restores_the_model(engine, pair, tmp_path):
    before = unet_state(engine)
    learned = engine.personalize(pair, "imposter-authors", FinetuneConfig(steps=2), progress=False)
    assert all(torch.equal(before[k], v) for k, v in engine.unet.state_dict().items())
    changed = [k for k in before if not torch.equal(before[k], learned.state[k])]
    assert len(changed) > 0.9 * len(before)  # full fine-tune, not LoRA
    assert len(learned.info["losses"]) == 4  # two updates per iteration
    assert learned.info["finetune"]["learning_rate"] == 2e-6
    images = engine.generate(pair, learned, seeds=[0], sampling=SamplingConfig(steps=8), progress=False)
    assert all(torch.equal(before[k], v) for k, v in engine.unet.state_dict().items())
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
    assert get_method("imposter").sampling_config(base) == base
    variant = SamplingConfig(k=2, phase_cutoff=0.1, guidance_until=0.5, guidance_space="denoised")
    paper = get_method("imposter-paper").sampling_config(variant)  # the recipe is fixed, the scales are not
    assert (paper.phase_cutoff, paper.guidance_until, paper.guidance_space) == (None, 1.0, "noisy")
    assert (paper.k, paper.amp_scale, paper.phase_scale) == (2, variant.amp_scale, variant.phase_scale)
    defaults = resolve(get_method("imposter-paper"), None)[1]
    assert (defaults.amp_scale, defaults.phase_scale, defaults.phase_cutoff) == (0.03, 0.1, None)
    assert {"imposter", "imposter-paper", "baseline++", "imposter-authors"} <= set(METHOD_NAMES)


def test_v_prediction_models_train_on_velocity(tmp_path):
    from tiny import tiny_components

    from imposter.finetune import denoising_loss, noise_scheduler_for

    parts = tiny_components(tmp_path, prediction_type="v_prediction")
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
