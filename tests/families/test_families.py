"""SDXL and FLUX.1 end to end on tiny random pipelines: fine-tune, generate, save, reload in diffusers."""

import json
import re
import warnings

import numpy as np
import pytest
import torch
from tiny import random_image

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.errors import ConfigError
from imposter.families import family_for_class
from imposter.families.flux import pack, unpack
from imposter.guidance import FrequencyTargets, guidance_losses
from imposter.methods import get_method
from imposter.personalizations import LORA_FILE, METADATA_FILE, Personalization
from imposter.testing_families import save_tiny_pipeline

FAST = SamplingConfig(steps=6, k=2, amp_scale=0.05, phase_scale=0.05)
PLAIN = SamplingConfig(steps=6, k=0, amp_scale=0.0, phase_scale=0.0)


def pixels(images):
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


@pytest.fixture(scope="module", params=["sdxl", "flux"])
def folder(request, tmp_path_factory):
    return save_tiny_pipeline(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def engine(folder):
    return ImPoster.from_pretrained(str(folder), device="cpu")


def prepare(engine):
    return engine.prepare(
        random_image(seed=1),
        "a dog",
        random_image(seed=2),
        "a cat drinking water from a mug",
        height=16,
        width=16,
    )


@pytest.fixture(scope="module")
def pair(engine):
    return prepare(engine)


@pytest.fixture(scope="module")
def learned(engine, pair):
    return engine.personalize(pair, "imposter", FinetuneConfig(steps=6), progress=False)


class Nothing(Personalization):
    """No adapter of ours: the pipeline's own (a LoRA loaded by diffusers) is what samples."""

    kind = "none"

    def _save_weights(self, directory):
        pass


def test_the_family_comes_from_model_index_json(folder, engine, pair):
    class_name = json.loads((folder / "model_index.json").read_text())["_class_name"]
    assert (
        engine.family.name
        == family_for_class(class_name, str(folder)).name
        == folder.name.removeprefix("tiny-")
    )
    assert pair.pooled.keys() == pair.embeds.keys()  # every caption's pooled embedding is there too
    assert pair.source_latents.shape == (1, 4, 8, 8)


def test_finetune_trains_the_familys_lora_targets_and_leaves_the_model_unchanged(engine, pair, learned):
    before = {k: v.clone() for k, v in engine.unet.state_dict().items()}
    engine.personalize(pair, "imposter", FinetuneConfig(steps=2), progress=False)
    after = engine.unet.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    prefix = engine.family.lora_prefix
    assert learned.state and all(k.startswith(f"{prefix}.") for k in learned.state)
    trained = {k.split(".lora")[0].split(".")[-1] for k in learned.state}
    assert {"to_q", "to_k", "to_v"} <= trained
    if engine.family.name == "flux":  # the text stream's projections too
        assert {"add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"} <= trained
    assert any(v.abs().sum() > 0 for k, v in learned.state.items() if "lora.up" in k or "lora_B" in k)
    assert learned.info["finetune"]["target_modules"] == list(engine.family.lora_targets)
    assert learned.info["finetune"]["gradient_checkpointing"] is True  # the family's default


def test_same_seed_same_image_and_different_seeds_differ(engine, pair, learned):
    first = pixels(engine.generate(pair, learned, seeds=[0, 1], sampling=FAST, progress=False))
    again = pixels(engine.generate(pair, learned, seeds=[0, 1], sampling=FAST, progress=False))
    assert np.array_equal(first, again)
    assert not np.array_equal(first[0], first[1])


def test_saved_adapter_loads_in_diffusers_and_gives_the_same_images(engine, pair, learned, folder, tmp_path):
    learned.save(tmp_path / "adapter")
    assert (tmp_path / "adapter" / LORA_FILE).exists()
    assert json.loads((tmp_path / "adapter" / METADATA_FILE).read_text())["family"] == engine.family.name
    reloaded = engine.load_personalization(tmp_path / "adapter")
    ours = pixels(engine.generate(pair, learned, seeds=[5], sampling=FAST, progress=False))
    assert np.array_equal(
        ours, pixels(engine.generate(pair, reloaded, seeds=[5], sampling=FAST, progress=False))
    )

    stock = ImPoster.from_pretrained(str(folder), device="cpu")
    stock.pipe.load_lora_weights(str(tmp_path / "adapter"))  # StableDiffusionXLPipeline / FluxPipeline's own
    stock_pair = prepare(stock)
    theirs = pixels(stock.generate(stock_pair, Nothing("imposter"), seeds=[5], sampling=FAST, progress=False))
    assert np.abs(ours - theirs).max() <= 1
    # and the pipeline's own __call__ on the caption text, with that LoRA, is our Baseline++
    noise = stock.initial_noise([5], stock_pair)
    latents = noise if engine.family.name == "sdxl" else pack(noise)
    call = stock.pipe(
        pair.target_prompt,
        latents=latents,
        num_inference_steps=PLAIN.steps,
        guidance_scale=PLAIN.guidance_scale,
        height=16,
        width=16,
        output_type="latent",
    ).images
    call = call if engine.family.name == "sdxl" else unpack(call, 8, 8)
    plain = get_method("baseline++")
    with learned.active(engine):
        ours_latents = plain.sample(engine, pair, learned, engine.initial_noise([5], pair), PLAIN, False)
    torch.testing.assert_close(call.float(), ours_latents, atol=1e-4, rtol=1e-4)


def test_the_driving_conditioning_is_used_for_exactly_the_first_k_steps(engine, pair, learned):
    seen = []
    family = engine.family.name

    def record(module, args, kwargs):
        if family == "sdxl":
            seen.append((kwargs["encoder_hidden_states"], kwargs["added_cond_kwargs"]["text_embeds"]))
        else:
            seen.append((kwargs["encoder_hidden_states"], kwargs["pooled_projections"]))

    sampling = SamplingConfig(steps=5, k=3, amp_scale=0.0, phase_scale=0.0)
    handle = engine.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        engine.generate(pair, learned, seeds=[0], sampling=sampling, progress=False)
    finally:
        handle.remove()
    assert len(seen) == 5
    for index, (embeds, pooled) in enumerate(seen):
        caption = pair.driving_prompt if index < 3 else pair.target_prompt
        expected = engine.conditioning(pair, caption)
        conditional = slice(-1, None)  # SDXL stacks [uncond, cond]; FLUX.1 (distilled guidance) has one row
        assert torch.equal(embeds[conditional].float(), expected.embeds), index
        assert torch.equal(pooled[conditional].float(), expected.pooled), index
        if family == "sdxl":
            assert torch.equal(embeds[:1].float(), engine.conditioning(pair, "").embeds)


def test_frequency_guidance_moves_the_latents_toward_the_driving_phase(engine, pair, learned):
    method = get_method("imposter")
    latents = {}
    for name, scale in (("off", 0.0), ("on", 0.3)):
        sampling = SamplingConfig(steps=6, k=2, amp_scale=0.0, phase_scale=scale)
        with learned.active(engine):
            latents[name] = method.sample(
                engine, pair, learned, engine.initial_noise([0, 1], pair), sampling, False
            )
    assert latents["on"].shape == latents["off"].shape == (2, 4, 8, 8)
    targets = FrequencyTargets.from_latents(pair.source_latents, pair.driving_latents)
    _, phase_off = guidance_losses(latents["off"], targets)
    _, phase_on = guidance_losses(latents["on"], targets)
    assert (phase_on < phase_off).all()


def test_denoised_space_guidance_runs_and_differs_from_noisy(engine, pair, learned):
    """x0 is not handed to the pipeline's callback: FLUX.1 reads it off the Euler step, SDXL off DDIM's."""
    method = get_method("imposter")
    results = {}
    for space in ("noisy", "denoised"):
        sampling = SamplingConfig(steps=4, k=1, amp_scale=0.1, phase_scale=0.3, guidance_space=space)
        with learned.active(engine), warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback to the noisy latents
            results[space] = method.sample(
                engine, pair, learned, engine.initial_noise([0], pair), sampling, False
            )
    assert not torch.equal(results["noisy"], results["denoised"])


@pytest.mark.parametrize("method", ["hiper", "adi", "adi+lora", "imposter-authors"])
def test_sd_only_methods_are_a_one_line_error(engine, pair, method):
    expected = re.escape(f"--method {method} runs on SD 1.x/2.x checkpoints only")
    with pytest.raises(ConfigError, match=expected) as raised:
        engine.personalize(pair, method, FinetuneConfig(steps=1), progress=False)
    assert engine.family.title in str(raised.value) and "\n" not in str(raised.value)


def test_gradient_checkpointing_gives_the_same_lora(engine, pair):
    on = engine.personalize(
        pair, "imposter", FinetuneConfig(steps=2, gradient_checkpointing=True), progress=False
    )
    off = engine.personalize(
        pair, "imposter", FinetuneConfig(steps=2, gradient_checkpointing=False), progress=False
    )
    for key in on.state:
        torch.testing.assert_close(on.state[key], off.state[key], atol=1e-5, rtol=1e-4)


def test_finetune_reads_the_denoisers_dtype_once_not_every_step(engine, pair, monkeypatch):
    # diffusers finds ``model.dtype`` by walking every module (about 8% of a LoRA step on the toy UNet)
    denoiser = engine.family.denoiser(engine.pipe)
    reads, dtype = [], type(denoiser).dtype
    monkeypatch.setattr(type(denoiser), "dtype", property(lambda self: reads.append(1) or dtype.fget(self)))
    counts = []
    for steps in (2, 5):
        reads.clear()
        engine.personalize(pair, "imposter", FinetuneConfig(steps=steps), progress=False)
        counts.append(len(reads))
    assert counts[0] == counts[1] > 0
