"""The denoising loop: stepwise prompting, hooks, NaN detection; against diffusers' own pipeline."""

import numpy as np
import pytest
import torch

from imposter.errors import NumericalError
from imposter.guidance import FrequencyTargets, frequency_guidance_step
from imposter.sampling import FrequencyGuidanceHook, Step, denoise, stepwise_prompts


class RecordingUNet(torch.nn.Module):
    """Wraps a UNet and keeps the text conditioning of every call."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet
        self.contexts = []

    @property
    def dtype(self):
        return self.unet.dtype

    def forward(self, sample, timestep, encoder_hidden_states):
        self.contexts.append(encoder_hidden_states.detach().clone())
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states)


def embeddings(engine):
    return (
        engine.encode_prompt(""),
        engine.encode_prompt("a cat dancing"),
        engine.encode_prompt("a dog dancing"),
    )


@pytest.mark.parametrize("k", [0, 6])  # the ends; tests/families/test_contract.py checks one in between
def test_stepwise_prompting_uses_the_driving_embedding_for_exactly_k_steps(engine, k):
    uncond, driving, target = embeddings(engine)
    unet = RecordingUNet(engine.unet)
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    denoise(
        unet, engine.scheduler, noise, stepwise_prompts(driving, target, k), uncond, 7.5, 6, progress=False
    )
    assert len(unet.contexts) == 6
    for i, context in enumerate(unet.contexts):
        uncond_half, cond_half = context.chunk(2)
        expected = driving if i < k else target
        assert torch.equal(cond_half, expected.expand(2, -1, -1)), f"step {i}"
        assert torch.equal(uncond_half, uncond.expand(2, -1, -1))


def test_no_classifier_free_guidance_at_scale_one(engine):
    uncond, driving, target = embeddings(engine)
    unet = RecordingUNet(engine.unet)
    denoise(unet, engine.scheduler, torch.randn(1, 4, 8, 8), lambda i: target, uncond, 1.0, 3, progress=False)
    assert all(c.shape[0] == 1 for c in unet.contexts)


def test_matches_diffusers_pipeline_without_hooks(engine):
    """Our loop with one prompt, no hook, is the stock StableDiffusionPipeline's."""
    uncond, _, target = embeddings(engine)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    ours = engine.decode(
        denoise(engine.unet, engine.scheduler, noise, lambda i: target, uncond, 7.5, 8, progress=False)
    )
    stock = engine.pipe(
        prompt_embeds=target,
        negative_prompt_embeds=uncond,
        latents=noise.clone(),
        num_inference_steps=8,
        guidance_scale=7.5,
        output_type="pil",
    ).images
    diff = np.abs(np.asarray(ours[0], dtype=int) - np.asarray(stock[0], dtype=int)).max()
    assert diff <= 1


def test_nan_latents_raise_a_clear_error(engine):
    uncond, _, target = embeddings(engine)

    def poison(step: Step):
        return step.latents * float("nan")

    with pytest.raises(NumericalError, match="NaN"):
        denoise(
            engine.unet,
            engine.scheduler,
            torch.randn(1, 4, 8, 8),
            lambda i: target,
            uncond,
            7.5,
            3,
            hook=poison,
            progress=False,
        )


def test_hook_sees_every_step_with_the_right_alpha(engine):
    uncond, _, target = embeddings(engine)
    seen = []

    def record(step: Step):
        seen.append(step)
        return step.latents

    denoise(
        engine.unet,
        engine.scheduler,
        torch.randn(1, 4, 8, 8),
        lambda i: target,
        uncond,
        7.5,
        5,
        hook=record,
        progress=False,
    )
    assert [s.index for s in seen] == list(range(5))
    timesteps = [int(t) for t in engine.scheduler.timesteps]
    for step, following in zip(seen, timesteps[1:] + [None], strict=True):
        expected = (
            engine.scheduler.final_alpha_cumprod
            if following is None
            else engine.scheduler.alphas_cumprod[following]
        )
        assert step.signal_scale == pytest.approx(float(expected) ** 0.5)


def test_denoised_space_moves_latents_by_sqrt_alpha_times_the_x0_update():
    torch.manual_seed(0)
    targets = FrequencyTargets.from_latents(torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8))
    step = Step(
        index=0,
        timestep=500,
        latents=torch.randn(1, 4, 8, 8),
        denoised=torch.randn(1, 4, 8, 8),
        signal_scale=0.6,
    )
    hook = FrequencyGuidanceHook(targets, 0.1, 0.01, "cos", "denoised")
    expected = step.latents + 0.6 * (
        frequency_guidance_step(step.denoised, targets, 0.1, 0.01) - step.denoised
    )
    torch.testing.assert_close(hook(step), expected)
    noisy = FrequencyGuidanceHook(targets, 0.1, 0.01, "cos", "noisy")
    torch.testing.assert_close(noisy(step), frequency_guidance_step(step.latents, targets, 0.1, 0.01))


def test_guidance_until_step_leaves_later_steps_alone():
    torch.manual_seed(1)
    targets = FrequencyTargets.from_latents(torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8))
    hook = FrequencyGuidanceHook(targets, 0.1, 0.1, until_step=3)
    for index, guided in ((2, True), (3, False), (10, False)):
        step = Step(
            index=index, timestep=500, latents=torch.randn(1, 4, 8, 8), denoised=None, signal_scale=0.5
        )
        assert torch.equal(hook(step), step.latents) != guided


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddim_x0_from_two_latents_is_the_schedulers_own(prediction_type):
    """What a pipeline callback can recover: x0 of a DDIM step (eta 0) from its input and output latents."""
    from diffusers import DDIMScheduler

    from imposter.sampling import alpha_prod_at, ddim_denoised

    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type=prediction_type,
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )  # fmt: skip
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(0)
    for index in (0, 4, 9):
        timestep = scheduler.timesteps[index]
        latents, output = (
            torch.randn(2, 4, 8, 8, generator=generator),
            torch.randn(2, 4, 8, 8, generator=generator),
        )
        step = scheduler.step(output, timestep, latents)
        following = scheduler.timesteps[index + 1] if index + 1 < 10 else None
        recovered = ddim_denoised(
            latents,
            step.prev_sample,
            alpha_prod_at(scheduler, int(timestep)),
            alpha_prod_at(scheduler, None if following is None else int(following)),
        )
        torch.testing.assert_close(recovered, step.pred_original_sample, atol=1e-4, rtol=1e-4)
