"""Reference rows: copies, the model-free phase swap and guidance, and the pretrained model from text."""

import numpy as np
import pytest
import torch

from imposter import FinetuneConfig, SamplingConfig
from imposter.guidance import amplitude, phase
from imposter.methods import get_method
from imposter.methods.references import REFERENCE_NAMES, guidance_only, phase_swap
from imposter.testing import random_image

FAST = SamplingConfig(steps=6)


def test_phase_swap_keeps_the_source_amplitude_and_takes_the_driving_phase():
    generator = torch.Generator().manual_seed(0)
    source, driving = torch.randn(2, 1, 4, 8, 8, generator=generator)
    swapped = phase_swap(source, driving)
    # the real part of the inverse FFT symmetrizes the spectrum, so the swap is exact only on itself;
    # otherwise the phase moves most of the way to the driving one and the energy stays in range
    assert torch.allclose(phase_swap(source, source), source, atol=1e-5)
    assert swapped.shape == source.shape and swapped.dtype == source.dtype
    closer_phase = (
        torch.cos(phase(swapped) - phase(driving)).mean(),
        torch.cos(phase(source) - phase(driving)).mean(),
    )
    assert closer_phase[0] > closer_phase[1] + 0.3
    assert torch.allclose(amplitude(swapped).sum(), amplitude(source).sum(), rtol=0.2)


def test_guidance_only_moves_the_source_toward_the_driving_phase():
    generator = torch.Generator().manual_seed(1)
    source, driving = torch.randn(2, 1, 4, 8, 8, generator=generator)
    sampling = SamplingConfig(steps=20, amp_scale=0.03, phase_scale=0.1)
    moved = guidance_only(source, driving, sampling)
    before = torch.cos(phase(source) - phase(driving)).mean()
    after = torch.cos(phase(moved) - phase(driving)).mean()
    assert after > before + 0.05
    assert torch.equal(guidance_only(source, driving, SamplingConfig(amp_scale=0.0, phase_scale=0.0)), source)


@pytest.fixture(scope="module")
def pair(engine):
    return engine.prepare(random_image(seed=1), "a dog", random_image(seed=2), "a cat jumping")


def pixels(images):
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


def test_references_learn_nothing_and_share_one_empty_personalization(engine, pair, tmp_path):
    before = {k: v.clone() for k, v in engine.denoiser.state_dict().items()}
    for name in REFERENCE_NAMES:
        method = get_method(name)
        assert method.finetune_kind == "none"
        learned = engine.personalize(pair, name, progress=False)
        learned.save(tmp_path / name)
        assert not [p for p in (tmp_path / name).iterdir() if p.suffix == ".safetensors"]
    assert all(torch.equal(before[k], v) for k, v in engine.denoiser.state_dict().items())


def test_copies_decode_to_their_input_and_every_seed_is_the_same(engine, pair):
    for name, latents in (("copy-source", pair.source_latents), ("copy-driving", pair.driving_latents)):
        learned = engine.personalize(pair, name, progress=False)
        images = engine.generate(pair, learned, seeds=[0, 1], sampling=FAST, method=name, progress=False)
        assert np.array_equal(pixels(images)[0], pixels(images)[1])
        # decoded in a batch of two vs alone: the convolutions may sum in another order (1/255 apart)
        assert np.abs(pixels(images)[0] - pixels(engine.decode(latents))[0]).max() <= 1


def test_text_only_is_the_base_model_with_the_target_caption(engine, pair):
    learned = engine.personalize(pair, "text-only", progress=False)
    text_only = engine.generate(pair, learned, seeds=[3], sampling=FAST, method="text-only", progress=False)
    lora = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=5), progress=False)
    tuned = engine.generate(pair, lora, seeds=[3], sampling=FAST, method="baseline++", progress=False)
    assert not np.array_equal(pixels(text_only), pixels(tuned))  # no fine-tune: another image
    with pytest.raises(Exception, match="contradicts"):
        get_method("text-only").check_flags({"sampling": {"k": 3}})


def test_every_method_pickles_for_the_bench_workers():
    import pickle

    from imposter.methods import METHOD_NAMES, get_method

    for name in METHOD_NAMES:  # imposter bench --num-processes sends the methods to spawned workers
        assert pickle.loads(pickle.dumps(get_method(name))).name == name
