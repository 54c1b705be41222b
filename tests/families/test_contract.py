"""What every model family does, held to one standard (as diffusers' PipelineTesterMixin holds its pipelines).

Each test runs on the tiny random pipeline of every family in ``imposter.families`` (built by
``imposter.testing``): a new family is one module, one entry in each registry, and this suite runs on it.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.errors import ConfigError, ModelLoadError, PromptError
from imposter.families import FAMILY_NAMES
from imposter.guidance import FrequencyTargets, guidance_losses
from imposter.methods import get_method
from imposter.personalizations import LORA_FILE, METADATA_FILE, Personalization
from imposter.testing import random_image, save_random_pipeline

FAST = SamplingConfig(steps=6, k=2, amp_scale=0.05, phase_scale=0.05)
SOURCE_PROMPT, DRIVING_PROMPT = "a dog", "a cat drinking water from a mug"


def pixels(images):
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def folder(request, tmp_path_factory):
    return save_random_pipeline(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def engine(folder):
    return ImPoster.from_pretrained(str(folder), device="cpu")


def prepare(engine):
    return engine.prepare(
        random_image(seed=1), SOURCE_PROMPT, random_image(seed=2), DRIVING_PROMPT, height=16, width=16
    )


@pytest.fixture(scope="module")
def pair(engine):
    return prepare(engine)


@pytest.fixture(scope="module")
def learned(engine, pair):
    return engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=6), progress=False)


class Nothing(Personalization):
    """No adapter of ours: the pipeline's own (a LoRA loaded by diffusers) is what samples."""

    kind = "none"

    def _save_weights(self, directory):
        pass


def test_finetune_trains_the_familys_lora_and_leaves_the_model_unchanged(engine, pair, learned):
    before = {k: v.clone() for k, v in engine.denoiser.state_dict().items()}
    again = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=2), progress=False)
    after = engine.denoiser.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert len(again.info["losses"]) == 2
    prefix = engine.family.lora_prefix
    assert learned.state and all(k.startswith(f"{prefix}.") and "lora" in k for k in learned.state)
    trained = {k.split(".lora")[0] for k in learned.state}
    assert all(any(name.endswith(target) for name in trained) for target in engine.family.lora_targets)
    ups = [v for k, v in learned.state.items() if "lora.up" in k or "lora_B" in k]
    assert ups and any(v.abs().sum() > 0 for v in ups)  # B starts at zero: it moved
    assert learned.info["finetune"]["target_modules"] == list(engine.family.lora_targets)
    assert learned.info["finetune"]["gradient_checkpointing"] is engine.family.gradient_checkpointing


def test_wide_lora_layers_reach_every_wide_target_and_reload_in_plain_diffusers(engine, pair, tmp_path):
    wide = engine.personalize(
        pair, "imposter-subject", FinetuneConfig(steps=1, rank=2, lora_layers="wide"), progress=False
    )
    trained = {k.split(".lora")[0] for k in wide.state}
    extra = set(engine.family.lora_wide_targets) - set(engine.family.lora_targets)
    assert extra and all(any(name.endswith(target) for name in trained) for target in extra)
    assert wide.info["finetune"]["target_modules"] == list(engine.family.lora_wide_targets)
    with wide.active(engine):  # every trained layer is in the model that samples, attention included
        loaded = {n.split(".lora_B")[0] for n, _ in engine.denoiser.named_parameters() if ".lora_B." in n}
    assert {k.split(".lora")[0].split(".", 1)[1] for k in wide.state} <= loaded
    wide.save(tmp_path / "wide")
    engine.pipe.load_lora_weights(str(tmp_path / "wide"), adapter_name="wide")  # diffusers reads it all
    engine.pipe.delete_adapters("wide")
    # imposter-subject learns rank 16 on the wide layers unless told otherwise (toy v3 tune split)
    assert get_method("imposter-subject").finetune_defaults == {"rank": 16, "lora_layers": "wide"}


def test_a_saved_adapter_reloads_here_and_in_plain_diffusers_with_the_same_image(
    engine, pair, learned, folder, tmp_path
):
    learned.save(tmp_path / "adapter")
    assert (tmp_path / "adapter" / LORA_FILE).exists()
    assert json.loads((tmp_path / "adapter" / METADATA_FILE).read_text())["family"] == engine.family.name
    reloaded = engine.load_personalization(tmp_path / "adapter")
    ours = pixels(engine.generate(pair, learned, seeds=[5], sampling=FAST, progress=False))
    assert np.array_equal(
        ours, pixels(engine.generate(pair, reloaded, seeds=[5], sampling=FAST, progress=False))
    )

    stock = ImPoster.from_pretrained(str(folder), device="cpu")
    stock.pipe.load_lora_weights(str(tmp_path / "adapter"))  # the diffusers pipeline's own loader
    stock_pair = prepare(stock)
    theirs = pixels(
        stock.generate(stock_pair, Nothing("imposter-guided"), seeds=[5], sampling=FAST, progress=False)
    )
    assert np.abs(ours - theirs).max() <= 1
    # and the pipeline's own __call__ on the target caption, with that LoRA and the seed's noise, is Baseline++
    plain = get_method("baseline++").sampling_config(FAST)
    call = stock.pipe(
        pair.target_prompt,
        generator=torch.Generator().manual_seed(5),
        num_inference_steps=plain.steps,
        guidance_scale=plain.guidance_scale,
        height=16,
        width=16,
    ).images
    baseline = engine.generate(pair, learned, seeds=[5], sampling=FAST, method="baseline++", progress=False)
    assert np.abs(pixels(call) - pixels(baseline)).max() <= 1


def tensors(value) -> list[torch.Tensor]:
    """Every tensor among a call's arguments, nested dictionaries included."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors(item)]
    return []


def test_the_first_k_steps_see_the_driving_conditioning_and_the_rest_the_target(engine, pair, learned):
    seen = []

    def record(module, args, kwargs):
        seen.append(kwargs)

    sampling = SamplingConfig(steps=5, k=3, amp_scale=0.0, phase_scale=0.0)
    handle = engine.denoiser.register_forward_pre_hook(record, with_kwargs=True)
    try:
        engine.generate(pair, learned, seeds=[0], sampling=sampling, progress=False)
    finally:
        handle.remove()
    assert len(seen) == 5
    unconditional = engine.conditioning(pair, "")
    for index, kwargs in enumerate(seen):
        expected = engine.conditioning(pair, pair.driving_prompt if index < 3 else pair.target_prompt)
        embeds = kwargs["encoder_hidden_states"].float()
        assert torch.equal(embeds[-1:], expected.embeds), index  # the conditional row comes last
        if len(embeds) == 2:  # classifier-free guidance batches [unconditional, conditional]
            assert torch.equal(embeds[:1], unconditional.embeds), index
        if expected.pooled is not None:
            pooled = [t for t in tensors(kwargs) if t.shape[-1:] == expected.pooled.shape[-1:]]
            assert any(torch.equal(t[-1:].float(), expected.pooled) for t in pooled), index
    assert not torch.equal(
        engine.conditioning(pair, pair.driving_prompt).embeds,
        engine.conditioning(pair, pair.target_prompt).embeds,
    )


def test_frequency_guidance_lowers_both_its_losses(engine, pair, learned):
    method = get_method("imposter-guided")
    latents = {}
    for name, scale in (("off", 0.0), ("on", 0.2)):
        sampling = SamplingConfig(steps=6, k=2, amp_scale=scale, phase_scale=scale)
        with learned.active(engine):
            latents[name] = method.sample(
                engine, pair, learned, engine.initial_noise([0, 1], pair), sampling, False
            )
    assert latents["on"].shape == latents["off"].shape == (2, *pair.source_latents.shape[1:])
    targets = FrequencyTargets.from_latents(pair.source_latents, pair.driving_latents)
    amplitude_off, phase_off = guidance_losses(latents["off"], targets)
    amplitude_on, phase_on = guidance_losses(latents["on"], targets)
    assert (amplitude_on < amplitude_off).all() and (phase_on < phase_off).all()


def test_a_seed_gives_the_same_image_alone_or_in_a_batch(engine, pair, learned):
    together = pixels(engine.generate(pair, learned, seeds=[3, 4], sampling=FAST, progress=False))
    alone = pixels(engine.generate(pair, learned, seeds=[4], sampling=FAST, progress=False))
    again = pixels(engine.generate(pair, learned, seeds=[4], sampling=FAST, progress=False))
    assert np.array_equal(alone, again)
    assert np.abs(alone[0] - together[1]).max() <= 1
    assert not np.array_equal(together[0], together[1])


def test_starting_from_the_driving_image_keeps_its_latents_at_low_strength(engine, pair, learned):
    """--driving-strength (img2img): the sampler starts late, from the noised driving latents."""
    plain = replace(FAST, k=0, amp_scale=0.0, phase_scale=0.0)
    method = get_method("imposter-guided")
    noise = torch.randn((1, *pair.driving_latents.shape[1:]), generator=torch.Generator().manual_seed(0))
    distance = {}
    for strength in (0.2, None):
        with learned.active(engine):
            sampling = replace(plain, driving_strength=strength)
            latents = method.sample(engine, pair, learned, noise, sampling, progress=False)
        assert torch.isfinite(latents).all()
        distance[strength] = (latents - pair.driving_latents).pow(2).mean().item()
    assert distance[0.2] < 0.5 * distance[None], distance


def corrupted_adapter(learned, folder):
    """An adapter folder whose weights file was cut short."""
    learned.save(folder / "good")
    (folder / "bad").mkdir()
    (folder / "bad" / METADATA_FILE).write_text((folder / "good" / METADATA_FILE).read_text())
    (folder / "bad" / LORA_FILE).write_bytes((folder / "good" / LORA_FILE).read_bytes()[:100])
    return folder / "bad"


def unreadable_metadata(learned, folder):
    """An adapter folder whose metadata is not JSON."""
    learned.save(folder)
    (folder / METADATA_FILE).write_text("{not json")
    return folder


# case -> (the call, on the engine, the learned adapter and a scratch folder; its error; what the message says)
BAD_INPUTS = {
    "empty caption": (
        lambda engine, learned, tmp: engine.prepare(random_image(), "a dog", random_image(), " "),
        PromptError,
        "--driving-prompt is empty",
    ),
    "size off the VAE's grid": (
        lambda engine, learned, tmp: engine.prepare(
            random_image(), "a dog", random_image(), "a cat dancing", height=15, width=16
        ),
        ConfigError,
        "--height 15 must be a positive multiple of",
    ),
    "corrupted adapter": (
        lambda engine, learned, tmp: engine.load_personalization(corrupted_adapter(learned, tmp)),
        ModelLoadError,
        "--adapter .*bad could not be read",
    ),
    "adapter metadata not JSON": (
        lambda engine, learned, tmp: engine.load_personalization(unreadable_metadata(learned, tmp)),
        ModelLoadError,
        "--adapter .* is not readable JSON",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_one_line_error_naming_it(engine, learned, tmp_path, case):
    call, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message) as raised:
        call(engine, learned, tmp_path)
    assert "\n" not in str(raised.value)
