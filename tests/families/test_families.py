"""What SDXL and FLUX.1 do beyond the shared contract (tests/families/test_contract.py), on tiny random pipelines."""

import json
import re
import warnings

import pytest
import torch

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.errors import ConfigError
from imposter.families import family_for_class
from imposter.methods import get_method
from imposter.testing import random_image, save_random_pipeline


@pytest.fixture(scope="module", params=["sdxl", "flux"])
def folder(request, tmp_path_factory):
    return save_random_pipeline(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def engine(folder):
    return ImPoster.from_pretrained(str(folder), device="cpu")


@pytest.fixture(scope="module")
def pair(engine):
    return engine.prepare(
        random_image(seed=1),
        "a dog",
        random_image(seed=2),
        "a cat drinking water from a mug",
        height=16,
        width=16,
    )


@pytest.fixture(scope="module")
def learned(engine, pair):
    return engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=6), progress=False)


def test_the_family_comes_from_model_index_json(folder, engine, pair):
    class_name = json.loads((folder / "model_index.json").read_text())["_class_name"]
    assert (
        engine.family.name
        == family_for_class(class_name, str(folder)).name
        == folder.name.removeprefix("tiny-")
    )
    assert pair.pooled.keys() == pair.embeds.keys()  # every caption's pooled embedding is there too
    assert pair.source_latents.shape == (1, 4, 8, 8)


def test_denoised_space_guidance_runs_and_differs_from_noisy(engine, pair, learned):
    """x0 is not handed to the pipeline's callback: FLUX.1 reads it off the Euler step, SDXL off DDIM's."""
    method = get_method("imposter-guided")
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
        pair, "imposter-guided", FinetuneConfig(steps=2, gradient_checkpointing=True), progress=False
    )
    off = engine.personalize(
        pair, "imposter-guided", FinetuneConfig(steps=2, gradient_checkpointing=False), progress=False
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
        engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=steps), progress=False)
        counts.append(len(reads))
    assert counts[0] == counts[1] > 0
