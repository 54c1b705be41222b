"""HiPer: only the embedding tail is learned, the model is untouched, SD-2 padding, save/reload, CLI."""

import json

import numpy as np
import pytest
import torch

from imposter import FinetuneConfig, SamplingConfig
from imposter.cli import main
from imposter.errors import PromptError
from imposter.methods import get_method
from imposter.methods.conditioning import encode_ids
from imposter.methods.hiper import TAIL, HiPerMethod, hiper_condition, tail_ids
from imposter.personalizations import EMBEDDINGS_FILE, METADATA_FILE
from imposter.settings import resolve
from imposter.testing import random_image

pytest_plugins = ["peer_fixtures"]  # peer_pair, bang_engine, bang_pair, adam_spy, snapshot
FAST = SamplingConfig(steps=3)


def initial_tail(engine, prompt: str, tokens: int = 5) -> torch.Tensor:
    ids = tail_ids(engine.pipe.tokenizer, prompt, tokens)
    with torch.no_grad():
        return encode_ids(engine.pipe.text_encoder, ids)[0, -tokens:]


def test_only_the_tail_is_trained_and_the_frozen_model_is_unchanged(snapshot, engine, peer_pair, adam_spy):
    before = snapshot(engine)
    learned = engine.personalize(
        peer_pair, "hiper", FinetuneConfig(steps=4, learning_rate=5e-3), progress=False
    )
    before.assert_unchanged()
    assert len(adam_spy) == 1 and [tuple(p.shape) for p in adam_spy[0]] == [(5, 32)]
    assert set(learned.tensors) == {TAIL} and not learned.lora
    tail = learned.tensors[TAIL]
    start = initial_tail(engine, peer_pair.source_prompt)
    assert tail.shape == start.shape and not torch.equal(tail, start)  # it trained, from the source tail
    assert len(learned.info["losses"]) == 4 and learned.info["tokens"] == 5


def test_zero_steps_keep_the_tail_it_started_from(engine, peer_pair):
    learned = engine.personalize(peer_pair, HiPerMethod(tokens=10), FinetuneConfig(steps=0), progress=False)
    assert torch.equal(learned.tensors[TAIL], initial_tail(engine, peer_pair.source_prompt, 10))


def test_sd2_bang_padding_tail_starts_from_end_token_outputs(bang_engine, bang_pair):
    tokenizer = bang_engine.pipe.tokenizer
    assert tokenizer.pad_token == "!" and tokenizer.pad_token_id != tokenizer.eos_token_id
    ids = tail_ids(tokenizer, "a dog", 5)
    native = tokenizer("a dog", padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert (ids[0, -5:] == tokenizer.eos_token_id).all()
    assert torch.equal(ids[:, :-5], native[:, :-5]) and (native[0, -5:] == tokenizer.pad_token_id).all()
    with torch.no_grad():
        encoded = encode_ids(bang_engine.pipe.text_encoder, ids)
    # causal attention: the positions before the tail are the pipeline's own encoding of the caption
    assert torch.allclose(encoded[:, :-5], bang_engine.encode_prompt("a dog").embeds[:, :-5], atol=1e-6)
    learned = bang_engine.personalize(bang_pair, "hiper", FinetuneConfig(steps=0), progress=False)
    assert torch.equal(learned.tensors[TAIL], encoded[0, -5:])
    images = bang_engine.generate(bang_pair, learned, seeds=[0], sampling=FAST, progress=False)
    assert images[0].size == bang_pair.size


def test_sampling_condition_is_the_target_head_and_the_scaled_tail():
    target, tail = torch.randn(1, 77, 8), torch.randn(5, 8)
    cond = hiper_condition(target, tail)
    assert cond.shape == target.shape
    assert torch.equal(cond[:, :72], target[:, :72]) and torch.allclose(cond[0, 72:], 0.8 * tail)


def test_a_caption_that_reaches_the_tail_is_a_prompt_error(engine):
    long_caption = "a " + "x" * 70  # one token per character: 73 with start and end, over 77 - 5
    long = engine.prepare(random_image(seed=1), long_caption, random_image(seed=2), "a cat dancing", "a dog")
    with pytest.raises(PromptError, match="--source-prompt has 73 tokens.*at most 72"):
        engine.personalize(long, "hiper", FinetuneConfig(steps=1), progress=False)


def test_defaults_and_fixed_settings():
    method = get_method("hiper")
    assert method.finetune_kind == "text-embedding"
    finetune, sampling = resolve(method, None)
    assert (finetune.steps, finetune.learning_rate) == (1000, 5e-3)
    assert resolve(method, None, {"steps": 7})[0].steps == 7  # the user's flags win
    assert (sampling.k, sampling.amp_scale, sampling.phase_scale) == (0, 0.0, 0.0)
    assert (sampling.steps, sampling.guidance_scale) == (50, 7.5)


def test_save_and_reload_give_identical_images(engine, peer_pair, tmp_path):
    learned = engine.personalize(peer_pair, "hiper", FinetuneConfig(steps=2), progress=False)
    first = engine.generate(peer_pair, learned, seeds=[3], sampling=FAST, progress=False)
    folder = learned.save(tmp_path / "adapter")
    assert {p.name for p in folder.iterdir()} == {EMBEDDINGS_FILE, METADATA_FILE}
    loaded = engine.load_personalization(folder, "hiper")
    assert torch.equal(loaded.tensors[TAIL], learned.tensors[TAIL])
    again = engine.generate(peer_pair, loaded, seeds=[3], sampling=FAST, progress=False)
    assert np.array_equal(np.asarray(first[0]), np.asarray(again[0]))


def test_generate_cli_runs_hiper_and_refuses_stepwise_prompting(tiny_model, pair_files, tmp_path, capsys):
    args = [
        "generate", "--model", str(tiny_model), "--method", "hiper",
        "--source", str(pair_files["source"]), "--source-prompt", "a dog",
        "--driving", str(pair_files["driving"]), "--driving-prompt", "a cat drinking water from a mug",
        "--train-steps", "2", "--steps", "2", "--quiet",
    ]  # fmt: skip
    out = tmp_path / "run"
    assert main([*args, "--out", str(out)]) == 0
    run = json.loads((out / "config.json").read_text())["run"]
    assert run["method"] == "hiper" and run["sampling"]["k"] == 0 and run["finetune"]["learning_rate"] == 5e-3
    assert (out / "adapter" / EMBEDDINGS_FILE).exists() and (out / "seed_0.png").exists()
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "k"), "--k", "2"]) == 2
    assert "contradicts --method hiper" in capsys.readouterr().err
