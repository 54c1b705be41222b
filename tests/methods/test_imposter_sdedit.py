"""imposter-sdedit: a LoRA of the source alone, then SDEdit of the driving image with the source's amplitude
guidance, attending to the source."""

from dataclasses import replace

import torch

from imposter import FinetuneConfig
from imposter.families import get_family
from imposter.methods import check_compatible, get_method
from imposter.settings import resolve
from imposter.testing import random_image


def test_its_defaults_per_family_and_its_fine_tune_is_the_source_lora():
    method = get_method("imposter-sdedit")
    check_compatible(method, "subject-lora")  # one source-only fine-tune serves both
    for family in ("sd", "sdxl"):
        finetune, sampling = resolve(method, get_family(family))
        assert (sampling.driving_strength, sampling.source_attention_from) == (0.6, 0)
        assert (sampling.k, sampling.amp_scale, sampling.phase_scale) == (0, 0.03, 0.0)
        assert (finetune.kind, finetune.rank, finetune.lora_layers) == ("lora-source", 16, "wide")
    _, flux = resolve(method, get_family("flux"))  # no UNet decoder to attend with; FLUX.1's amplitude: off
    assert (flux.driving_strength, flux.source_attention_from, flux.amp_scale) == (0.6, None, 0.0)
    _, weaker = resolve(method, get_family("sd"), sampling={"driving_strength": 0.3})
    assert weaker.driving_strength == 0.3  # the user's strength over the method's


def test_the_layout_comes_from_the_driving_image_and_attention_changes_the_result(engine):
    pair = engine.prepare(random_image(seed=5), "a dog", random_image(seed=6), "a cat jumping")
    learned = engine.personalize(pair, "subject-lora", FinetuneConfig(steps=2, rank=4), progress=False)
    _, sampling = resolve(get_method("imposter-sdedit"), engine.family, sampling={"steps": 6})
    noise = torch.randn((1, *pair.driving_latents.shape[1:]), generator=torch.Generator().manual_seed(0))
    method = get_method("imposter-sdedit")
    results = {}
    for name, setting in {
        "default": sampling,
        "no attention": replace(sampling, source_attention_from=None, amp_scale=0.0),
        "pure noise": replace(sampling, driving_strength=None, source_attention_from=None, amp_scale=0.0),
    }.items():
        with learned.active(engine):
            results[name] = method.sample(engine, pair, learned, noise, setting, progress=False)
        assert torch.isfinite(results[name]).all()
    distance = {name: (x - pair.driving_latents).pow(2).mean().item() for name, x in results.items()}
    assert distance["no attention"] < distance["pure noise"], distance  # started from the driving image
    assert not torch.equal(results["default"], results["no attention"])  # attention and guidance act


def test_each_row_starts_from_its_own_driving_frame(engine):
    """animate: a pair holding one driving latent per frame starts each row from its own frame."""
    from imposter.methods.imposter import from_driving

    pair = engine.prepare(random_image(seed=5), "a dog", random_image(seed=6), "a cat jumping")
    frames = torch.stack([pair.driving_latents[0], -pair.driving_latents[0]])
    noise = torch.zeros((2, *pair.driving_latents.shape[1:]))
    _, sampling = resolve(get_method("imposter-sdedit"), engine.family, sampling={"steps": 10})
    started, start = from_driving(engine, replace(pair, driving_latents=frames), noise, sampling)
    assert start == 4  # diffusers' rule: 10 - int(10 * 0.6)
    scale = started[0] / frames[0]  # zero noise: each row is its frame scaled by sqrt(alpha_bar)
    assert torch.allclose(started, frames * scale.flatten()[0], atol=1e-6) and 0 < scale.flatten()[0] < 1
    one, _ = from_driving(engine, pair, noise, sampling)  # one driving image for every row
    assert torch.allclose(one[1], one[0])


def test_source_attention_counts_steps_of_the_schedule_when_img2img_skips_some(engine, monkeypatch):
    """--source-attention-from is a step of the schedule, as K is: with the first 3 of 6 steps skipped, step 4
    is the second step run; a step already skipped means from the first step run."""
    import contextlib

    import imposter.methods.imposter as module

    pair = engine.prepare(random_image(seed=5), "a dog", random_image(seed=6), "a cat jumping")
    learned = engine.personalize(pair, "subject-lora", FinetuneConfig(steps=1, rank=4), progress=False)
    seen = []
    monkeypatch.setattr(
        module, "source_attention", lambda *args: seen.append(args[-1]) or contextlib.nullcontext()
    )
    _, sampling = resolve(get_method("imposter-sdedit"), engine.family, sampling={"steps": 6})
    noise = torch.zeros((1, *pair.driving_latents.shape[1:]))
    for attend in (4, 1, None):
        setting = replace(sampling, driving_strength=0.5, source_attention_from=attend)
        with learned.active(engine):
            get_method("imposter-sdedit").sample(engine, pair, learned, noise, setting, progress=False)
    assert seen == [1, 0, None]
