"""ADI and adi+lora: the gradient-invariance mask, per-layer conditioning, what is trained, save/reload, CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from imposter import FinetuneConfig, SamplingConfig
from imposter.cli import main
from imposter.errors import ConfigError
from imposter.methods import get_method
from imposter.methods.adi import (
    IDENTIFIER_TENSOR,
    ADIMethod,
    initial_identifier,
    invariance_mask,
    per_sample_gradients,
    sampling_prompt,
    shuffle_tiles,
    training_prompt,
)
from imposter.methods.conditioning import (
    cross_attention_layers,
    encode_placeholder,
    layerwise_conditioning,
    placeholder_prompt,
    shared_layers,
    stack_layers,
)
from imposter.personalizations import EMBEDDINGS_FILE, LORA_FILE, METADATA_FILE
from imposter.settings import resolve
from imposter.testing import random_image

DRIVING_PROMPT = "a cat drinking water from a mug"  # the driving caption of the ``peer_pair`` fixture
pytest_plugins = ["peer_fixtures"]  # peer_pair, bang_engine, bang_pair, adam_spy, snapshot
FAST = SamplingConfig(steps=3)


# -- the mask ------------------------------------------------------------------------------------


def test_mask_has_the_identifier_shape_and_the_ratio_of_blocked_channels_in_every_layer():
    anchor, context, action = torch.randn(3, 16, 768).unbind(0)  # SD: 16 cross-attention layers x 768
    for ratio in (0.0, 0.25, 0.5, 1.0):
        mask = invariance_mask(anchor, context, action, ratio)
        assert mask.shape == (16, 768) and set(mask.unique().tolist()) <= {0.0, 1.0}
        assert (mask.sum(-1) == 768 - round(ratio * 768)).all()


def test_mask_blocks_channels_that_follow_the_context_and_keeps_those_that_follow_the_action():
    anchor = torch.zeros(2, 4)
    context, action = anchor.clone(), anchor.clone()
    context[:, 0] = 5.0  # channel 0 changes with the context: appearance
    action[:, 1] = 5.0  # channel 1 changes with the action
    mask = invariance_mask(anchor, context, action, ratio=0.25)
    assert mask[:, 0].eq(0).all() and mask[:, 1:].eq(1).all()


def test_mask_ignores_the_gradients_scale_and_checks_its_ratio():
    anchor, context, action = torch.randn(3, 4, 32).unbind(0)
    mask = invariance_mask(anchor, context, action)
    assert torch.equal(mask, invariance_mask(3.7 * anchor, 3.7 * context, 3.7 * action))
    with pytest.raises(ConfigError, match="mask ratio"):
        invariance_mask(anchor, context, action, 1.5)


def test_shuffled_tiles_keep_the_values_and_lose_the_layout():
    latents = torch.arange(4 * 9 * 10, dtype=torch.float32).reshape(1, 4, 9, 10)
    shuffled = shuffle_tiles(latents, torch.Generator().manual_seed(0))
    assert shuffled.shape == latents.shape and not torch.equal(shuffled, latents)
    assert torch.equal(shuffled.flatten().sort().values, latents.flatten().sort().values)
    assert torch.equal(shuffled[:, :, 8:], latents[:, :, 8:]) and torch.equal(
        shuffled[..., 8:], latents[..., 8:]
    )


# -- prompts and per-layer conditioning ----------------------------------------------------------


def test_the_identifier_replaces_the_action_words(peer_pair):
    assert training_prompt(DRIVING_PROMPT) == "a cat <A>"
    assert training_prompt("a cat") == "a cat <A>"
    assert sampling_prompt(peer_pair) == "a dog <A>"
    beach = replace(peer_pair, target_prompt="a dog drinking water from a mug on a beach")
    assert sampling_prompt(beach) == "a dog <A> on a beach"
    assert sampling_prompt(replace(peer_pair, target_prompt="a dog jumping")) == "a dog <A>"


@pytest.mark.parametrize("which", ["engine", "bang_engine"])
def test_placeholder_encoding_equals_the_caption_with_that_word(which, request):
    engine = request.getfixturevalue(which)
    tokenizer, text_encoder = engine.pipe.tokenizer, engine.pipe.text_encoder
    prompt = placeholder_prompt(tokenizer, "a cat <A> now", "<A>", "--driving-prompt")
    assert prompt.ids.shape == (1, 77) and (prompt.ids[0, -1] == tokenizer.pad_token_id)  # "!" on SD 2.x
    word = tokenizer("x", add_special_tokens=False).input_ids
    vector = text_encoder.get_input_embeddings().weight[word].detach()
    with torch.no_grad():
        encoded = encode_placeholder(text_encoder, prompt, vector.repeat(3, 1))
    assert encoded.shape == (3, 77, 32)
    assert torch.allclose(encoded, engine.encode_prompt("a cat x now").embeds.expand(3, -1, -1), atol=1e-6)


def test_layerwise_conditioning_gives_each_layer_its_slice_and_restores_the_unet(snapshot, engine):
    unet, before = engine.denoiser, snapshot(engine)
    layers = cross_attention_layers(unet)
    assert len(layers) == 4 and all(name.endswith("attn2.processor") for name in layers)
    latents, t = torch.randn(2, 4, 8, 8), torch.tensor(500)
    embeds, other = torch.randn(2, 1, 77, 32).unbind(0)
    with torch.no_grad():
        plain = unet(latents, t, encoder_hidden_states=embeds.expand(2, -1, -1)).sample
        with layerwise_conditioning(unet) as names:
            assert names == layers
            same = unet(latents, t, encoder_hidden_states=shared_layers(embeds, 4).expand(2, -1, -1)).sample
            mixed = stack_layers(torch.cat([embeds, other, embeds, embeds]))
            changed = unet(latents, t, encoder_hidden_states=mixed.expand(2, -1, -1)).sample
    assert torch.allclose(same, plain, atol=1e-5) and not torch.allclose(changed, plain, atol=1e-3)
    before.assert_unchanged()
    with pytest.raises(RuntimeError), layerwise_conditioning(unet):
        raise RuntimeError
    before.assert_unchanged()


# -- training ------------------------------------------------------------------------------------


def test_only_the_layer_wise_identifier_is_trained_and_the_frozen_model_is_unchanged(
    snapshot, engine, peer_pair, adam_spy
):
    before = snapshot(engine)
    learned = engine.personalize(peer_pair, "adi", FinetuneConfig(steps=3), progress=False)
    before.assert_unchanged()
    assert len(adam_spy) == 1 and [tuple(p.shape) for p in adam_spy[0]] == [(4, 32)]  # 4 layers x D_in
    assert set(learned.tensors) == {IDENTIFIER_TENSOR} and not learned.lora
    start = initial_identifier(engine, DRIVING_PROMPT, 4)
    identifier = learned.tensors[IDENTIFIER_TENSOR]
    assert not torch.equal(identifier, start)
    info = learned.info
    assert (
        info["blocked_fraction"] == 0.5 and info["exemplars"] == 1 and info["training_prompt"] == "a cat <A>"
    )
    assert (
        info["cross_attention_layers"] == cross_attention_layers(engine.denoiser) and len(info["losses"]) == 3
    )


@pytest.mark.parametrize("ratio, moved", [(0.5, 16), (0.25, 24), (1.0, 0)])
def test_the_mask_blocks_the_updates_of_its_channels(engine, peer_pair, ratio, moved):
    learned = engine.personalize(
        peer_pair, ADIMethod(mask_ratio=ratio), FinetuneConfig(steps=1), progress=False
    )
    changed = learned.tensors[IDENTIFIER_TENSOR] != initial_identifier(engine, DRIVING_PROMPT, 4)
    assert changed.sum(-1).tolist() == [moved] * 4  # of each layer's 32 channels, after one step


def test_per_sample_gradients_match_each_samples_own_loss(engine, peer_pair):
    loss_fn = engine.training_loss()
    prompt = placeholder_prompt(engine.pipe.tokenizer, "a cat <A>", "<A>", "--driving-prompt")
    identifier = initial_identifier(engine, DRIVING_PROMPT, 4).requires_grad_(True)
    latents = torch.randn(3, 4, 8, 8)
    noise, timesteps = torch.randn(1, 4, 8, 8), torch.tensor([321])
    with layerwise_conditioning(engine.denoiser):

        def cond():
            return stack_layers(encode_placeholder(engine.pipe.text_encoder, prompt, identifier))

        loss, grads = per_sample_gradients(
            engine.denoiser, loss_fn, latents, cond(), identifier, noise, timesteps
        )
        for k in range(3):
            own = loss_fn(engine.denoiser, latents[k : k + 1], cond(), noise, timesteps)
            (expected,) = torch.autograd.grad(own, identifier)
            assert torch.allclose(grads[k], expected / 3, atol=1e-8, rtol=1e-4)
    assert loss.shape == ()


def test_more_exemplars_are_accepted(engine, peer_pair, tmp_path):
    random_image(tmp_path / "third.png", seed=4)
    method = ADIMethod(exemplars=[random_image(seed=3), tmp_path / "third.png"])
    learned = engine.personalize(peer_pair, method, FinetuneConfig(steps=2), progress=False)
    assert learned.info["exemplars"] == 3


def test_adi_lora_holds_the_same_identifier_and_a_source_lora_and_reloads_to_the_same_images(
    snapshot, engine, peer_pair, tmp_path
):
    before = snapshot(engine)
    settings = FinetuneConfig(steps=2, learning_rate=5e-3)
    adi = engine.personalize(peer_pair, "adi", settings, progress=False)
    combined = engine.personalize(peer_pair, "adi+lora", FinetuneConfig(steps=2), progress=False)
    assert torch.equal(adi.tensors[IDENTIFIER_TENSOR], combined.tensors[IDENTIFIER_TENSOR])
    assert combined.lora and all(k.startswith("unet.") and "lora" in k for k in combined.lora)
    assert len(combined.info["lora"]["losses"]) == 2
    first = engine.generate(peer_pair, combined, seeds=[5], sampling=FAST, progress=False)
    before.assert_unchanged()  # the LoRA is unloaded and the processors are back after sampling
    folder = combined.save(tmp_path / "adapter")
    assert {p.name for p in folder.iterdir()} == {EMBEDDINGS_FILE, LORA_FILE, METADATA_FILE}
    loaded = engine.load_personalization(folder, "adi+lora")
    again = engine.generate(peer_pair, loaded, seeds=[5], sampling=FAST, progress=False)
    assert np.array_equal(np.asarray(first[0]), np.asarray(again[0]))
    without_lora = engine.generate(peer_pair, adi, seeds=[5], sampling=FAST, progress=False)
    assert not np.array_equal(np.asarray(first[0]), np.asarray(without_lora[0]))


def test_sd2_bang_padding_runs_end_to_end(bang_engine, bang_pair):
    learned = bang_engine.personalize(bang_pair, "adi", FinetuneConfig(steps=1), progress=False)
    assert (
        bang_engine.generate(bang_pair, learned, seeds=[0], sampling=FAST, progress=False)[0].size
        == bang_pair.size
    )


def test_defaults_and_keys():
    adi, combined = get_method("adi"), get_method("adi+lora")
    assert (adi.finetune_kind, combined.finetune_kind) == ("identifier", "identifier+lora")
    finetune = resolve(adi, None)[0]
    assert (finetune.steps, finetune.learning_rate) == (500, 5e-3)
    assert resolve(combined, None)[0].learning_rate == FinetuneConfig().learning_rate  # the LoRA's
    for method in (adi, combined):
        sampling = resolve(method, None)[1]
        assert (sampling.k, sampling.amp_scale, sampling.phase_scale) == (0, 0.0, 0.0)
    with pytest.raises(ConfigError, match="mask ratio"):
        ADIMethod(mask_ratio=-0.1)


@pytest.mark.parametrize(
    "method, files", [("adi", {EMBEDDINGS_FILE}), ("adi+lora", {EMBEDDINGS_FILE, LORA_FILE})]
)
def test_generate_cli_runs_the_adi_methods(method, files, tiny_model, pair_files, tmp_path):
    out = tmp_path / "run"
    args = [
        "generate", "--model", str(tiny_model), "--method", method,
        "--source", str(pair_files["source"]), "--source-prompt", "a dog",
        "--driving", str(pair_files["driving"]), "--driving-prompt", DRIVING_PROMPT,
        "--train-steps", "2", "--steps", "2", "--quiet", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["method"] == method and config["run"]["sampling"]["k"] == 0
    assert config["personalization"]["training_prompt"] == "a cat <A>"
    assert files | {METADATA_FILE} == {p.name for p in (out / "adapter").iterdir()}
