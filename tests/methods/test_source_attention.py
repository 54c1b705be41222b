"""imposter-attend: from step K on, the decoder's self-attention also attends to the noised source image."""

from dataclasses import replace

import pytest
import torch

from imposter import FinetuneConfig, SamplingConfig
from imposter.errors import ConfigError
from imposter.methods import check_compatible, get_method
from imposter.source_attention import decoder_self_attention, source_attention
from imposter.testing import random_image

SAMPLING = SamplingConfig(steps=4, k=1, amp_scale=0.0, phase_scale=0.0)


@pytest.fixture(scope="module")
def learned(engine):
    pair = engine.prepare(random_image(seed=1), "a dog", random_image(seed=2), "a cat jumping")
    return pair, engine.personalize(pair, "imposter-subject", FinetuneConfig(steps=1), progress=False)


def test_the_decoder_attends_to_the_source_from_the_step_given(engine, learned):
    pair, personalization = learned
    check_compatible(get_method("imposter-attend"), personalization.method)  # imposter-subject's LoRA
    unet = engine.denoiser
    layers = decoder_self_attention(unet.attn_processors)
    assert layers and all(name.startswith("up_blocks.") and ".attn1." in name for name in layers)
    context_lengths = {}
    hooks = [
        module.register_forward_hook(
            lambda m, args, kwargs, out, name=name: context_lengths.setdefault(name, []).append(
                (args[0].shape[1] if args else kwargs["hidden_states"].shape[1]),
            ),
            with_kwargs=True,
        )
        for name, module in unet.named_modules()
        if name + ".processor" in layers
    ]
    try:
        before = {name: type(p) for name, p in unet.attn_processors.items()}

        def run(start):
            sampling = replace(SAMPLING, source_attention_from=start)
            return engine.generate(
                pair, personalization, [0], sampling, method="imposter-attend", progress=False
            )

        never = run(SAMPLING.steps)  # from the step after the last: the plain sampler, bit for bit
        plain = engine.generate(
            pair, personalization, [0], SAMPLING, method="imposter-subject", progress=False
        )
        assert never[0].tobytes() == plain[0].tobytes()
        context_lengths.clear()
        attended = run(2)
        assert attended[0].tobytes() != plain[0].tobytes()
        # from step 2 of 4, each layer runs twice a step (the source's pass, then the image's) for steps 2-3
        assert all(len(calls) == 4 + 2 for calls in context_lengths.values()), context_lengths
        assert {name: type(p) for name, p in unet.attn_processors.items()} == before  # restored
    finally:
        for hook in hooks:
            hook.remove()


def test_the_source_pass_sees_the_source_noised_to_the_step(engine, learned):
    pair, _ = learned
    unet, scheduler = engine.denoiser, engine.pipe.scheduler
    scheduler.set_timesteps(4)
    t = scheduler.timesteps[1]
    inputs = []
    handle = unet.register_forward_pre_hook(lambda m, a, k: inputs.append(a[0].clone()), with_kwargs=True)
    try:
        conditioning = engine.conditioning(pair, "a dog")
        with torch.no_grad(), source_attention(unet, scheduler, pair.source_latents, 0):
            unet(torch.zeros_like(pair.source_latents), t, encoder_hidden_states=conditioning.embeds)
    finally:
        handle.remove()
    image_pass, source_pass = inputs  # this hook runs first, then the reference pass calls the UNet again
    assert image_pass.abs().max() == 0
    noise = torch.randn(pair.source_latents.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(source_pass, scheduler.add_noise(pair.source_latents, noise, t.reshape(1)))


def test_errors_name_the_setting():
    with pytest.raises(ConfigError, match="--source-attention-from 9 must be a step between 0 and --steps"):
        SamplingConfig(steps=4, k=1, source_attention_from=9).validate()
    with pytest.raises(ConfigError, match="needs a UNet's decoder self-attention"):
        with source_attention(torch.nn.Linear(2, 2), None, torch.zeros(1), 0):
            pass
    assert get_method("imposter-attend").families == ("sd", "sdxl")
    assert get_method("imposter-attend").sampling_defaults == {"source_attention_from": 5}
