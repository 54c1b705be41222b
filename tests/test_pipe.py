"""A user's own pipeline: from_pipe keeps its scheduler and LoRAs; dtype names; what is said when we change things."""

import warnings

import pytest
import torch

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.errors import ConfigError
from imposter.models import resolve_dtype
from imposter.testing import random_image

FAST = SamplingConfig(steps=4, k=1)


def stock_pipe(tiny_model, scheduler_class=None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_model, safety_checker=None, requires_safety_checker=False
    )
    if scheduler_class is not None:
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    return pipe


def prepared(engine):
    return engine.prepare(random_image(seed=1), "a dog", random_image(seed=2), "a cat drinking water")


def test_from_pipe_keeps_the_scheduler_unless_asked(tiny_model):
    from diffusers import EulerDiscreteScheduler

    engine = ImPoster.from_pipe(stock_pipe(tiny_model, EulerDiscreteScheduler))
    assert type(engine.scheduler).__name__ == "EulerDiscreteScheduler"
    assert not any(p.requires_grad for p in engine.denoiser.parameters())
    pair = prepared(engine)
    learned = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=1), progress=False)
    (image,) = engine.generate(pair, learned, seeds=[0], sampling=FAST, progress=False)
    assert image.size == pair.size
    ddim = ImPoster.from_pipe(stock_pipe(tiny_model, EulerDiscreteScheduler), ddim=True)
    assert type(ddim.scheduler).__name__ == "DDIMScheduler"


def test_from_pretrained_says_when_it_swaps_the_scheduler_for_ddim(tiny_model, tmp_path, capsys):
    from diffusers import PNDMScheduler

    stock_pipe(tiny_model, PNDMScheduler).save_pretrained(tmp_path / "pndm")
    engine = ImPoster.from_pretrained(str(tmp_path / "pndm"), device="cpu")
    assert type(engine.scheduler).__name__ == "DDIMScheduler"
    said = capsys.readouterr().out
    assert "DDIM" in said and "PNDMScheduler" in said and len(said.strip().splitlines()) == 1
    ImPoster.from_pretrained(str(tiny_model), device="cpu")  # already DDIM: nothing to say
    assert capsys.readouterr().out == ""


def test_denoised_guidance_on_a_scheduler_without_x0_says_so(tiny_model):
    from diffusers import DPMSolverMultistepScheduler

    engine = ImPoster.from_pipe(stock_pipe(tiny_model, DPMSolverMultistepScheduler))
    pair = prepared(engine)
    learned = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=1), progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampling = SamplingConfig(steps=4, k=1, guidance_space="denoised")
        engine.generate(pair, learned, seeds=[0], sampling=sampling, progress=False)
    said = [str(w.message) for w in caught if "x0 prediction" in str(w.message)]
    assert len(said) == 1 and "--guidance-space" in said[0]


def test_our_adapter_goes_and_the_users_lora_stays(tiny_model):
    engine = ImPoster.from_pipe(stock_pipe(tiny_model))
    pair = prepared(engine)
    style = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=2, seed=7), progress=False)
    engine.denoiser.load_lora_adapter(dict(style.state), prefix="unet", adapter_name="style")
    sample = torch.randn(1, 4, 8, 8)
    embeds = engine.conditioning(pair, "a dog").embeds

    def output():
        with torch.no_grad():
            return engine.denoiser(sample, 500, encoder_hidden_states=embeds).sample

    before = output()
    learned = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=2), progress=False)
    engine.generate(pair, learned, seeds=[0], sampling=FAST, progress=False)
    assert list(engine.denoiser.peft_config) == ["style"] and engine.denoiser.active_adapters() == ["style"]
    assert torch.equal(output(), before)


@pytest.mark.parametrize("given", [torch.float16, "float16", "torch.float16", torch.bfloat16, "float32"])
def test_dtype_takes_torch_dtypes_and_names(given):
    expected = given if isinstance(given, torch.dtype) else getattr(torch, given.removeprefix("torch."))
    assert resolve_dtype(given, torch.device("cpu")) == expected


def test_an_unknown_dtype_names_the_choices():
    with pytest.raises(ConfigError, match="--dtype must be one of"):
        resolve_dtype(torch.int8, torch.device("cpu"))
