"""The sampling path: stepwise prompting, hooks, NaN detection, the scheduler's x0; against diffusers' pipeline."""

import numpy as np
import pytest
import torch

from imposter import SamplingConfig
from imposter.errors import NumericalError
from imposter.families.base import Conditioning, SamplingPlan
from imposter.guidance import FrequencyTargets, frequency_guidance_step
from imposter.sampling import FrequencyGuidanceHook, Step, observed, stepwise_prompts


def embeddings(engine):
    return (
        engine.encode_prompt("").embeds,
        engine.encode_prompt("a cat dancing").embeds,
        engine.encode_prompt("a dog dancing").embeds,
    )


def sample(engine, noise, condition_at, uncond, guidance_scale, steps, hook=None):
    """The SD family's sampler on embedding tensors."""
    sampling = SamplingConfig(steps=steps, guidance_scale=guidance_scale)
    plan = SamplingPlan(
        lambda index: Conditioning(condition_at(index)), Conditioning(uncond), sampling, hook, progress=False
    )
    return engine.family.sample(engine.pipe, noise, plan)


def recorded_contexts(engine, run) -> list[torch.Tensor]:
    """The text conditioning of every UNet call made by ``run()``."""
    contexts = []

    def record(module, args, kwargs):
        contexts.append(kwargs["encoder_hidden_states"].detach().clone())

    handle = engine.denoiser.register_forward_pre_hook(record, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return contexts


@pytest.mark.parametrize("k", [0, 6])  # the ends; tests/families/test_contract.py checks one in between
def test_stepwise_prompting_uses_the_driving_embedding_for_exactly_k_steps(engine, k):
    uncond, driving, target = embeddings(engine)
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    schedule = stepwise_prompts(driving, target, k)
    contexts = recorded_contexts(engine, lambda: sample(engine, noise, schedule, uncond, 7.5, 6))
    assert len(contexts) == 6
    for i, context in enumerate(contexts):
        uncond_half, cond_half = context.chunk(2)
        expected = driving if i < k else target
        assert torch.equal(cond_half, expected.expand(2, -1, -1)), f"step {i}"
        assert torch.equal(uncond_half, uncond.expand(2, -1, -1))


def test_no_classifier_free_guidance_at_scale_one(engine):
    uncond, driving, target = embeddings(engine)
    noise = torch.randn(1, 4, 8, 8)
    contexts = recorded_contexts(engine, lambda: sample(engine, noise, lambda i: target, uncond, 1.0, 3))
    assert len(contexts) == 3 and all(c.shape[0] == 1 for c in contexts)


def test_matches_diffusers_pipeline_without_hooks(engine):
    """Our sampler with one prompt, no hook, is the stock StableDiffusionPipeline's."""
    uncond, _, target = embeddings(engine)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    ours = engine.decode(sample(engine, noise, lambda i: target, uncond, 7.5, 8))
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
        sample(engine, torch.randn(1, 4, 8, 8), lambda i: target, uncond, 7.5, 3, hook=poison)


def test_hook_sees_every_step_with_the_right_alpha(engine):
    uncond, _, target = embeddings(engine)
    seen = []

    def record(step: Step):
        seen.append(step)
        return step.latents

    sample(engine, torch.randn(1, 4, 8, 8), lambda i: target, uncond, 7.5, 5, hook=record)
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


def test_observed_keeps_the_steps_x0_and_cuts_img2img_timesteps_then_leaves_the_scheduler_alone():
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(clip_sample=False, set_alpha_to_one=False)
    scheduler.set_timesteps(10)
    full = scheduler.timesteps.clone()
    generator = torch.Generator().manual_seed(0)
    latents, output = (torch.randn(2, 4, 8, 8, generator=generator) for _ in range(2))
    with observed(scheduler, first=3) as seen:
        scheduler.set_timesteps(10)
        assert torch.equal(scheduler.timesteps, full[3:])
        following = scheduler.step(output, scheduler.timesteps[0], latents, return_dict=False)[0]
        assert seen["sample"] is latents and torch.equal(seen["out"].prev_sample, following)
    expected = scheduler.step(output, full[3], latents)
    torch.testing.assert_close(seen["out"].pred_original_sample, expected.pred_original_sample)
    assert "step" not in vars(scheduler) and "set_timesteps" not in vars(scheduler)


def test_hold_region_puts_the_noised_layout_inside_the_mask_until_its_step():
    from imposter.sampling import HoldRegion, chained

    layout, noise = torch.full((1, 2, 4, 4), 2.0), torch.full((3, 2, 4, 4), -1.0)
    mask = torch.zeros((1, 1, 4, 4))
    mask[..., :2, :] = 1
    hold = HoldRegion(layout, noise, mask, until_step=3)
    latents = torch.zeros((3, 2, 4, 4))
    held = hold(Step(2, 10, latents, None, 0.6, 0.8))
    assert torch.allclose(held[..., :2, :], torch.tensor(0.6 * 2.0 - 0.8)) and torch.equal(
        held[..., 2:, :], latents[..., 2:, :]
    )
    assert torch.equal(hold(Step(3, 5, latents, None, 0.6, 0.8)), latents)  # released at its step
    double = chained(None, hold, lambda step: step.latents * 2)
    assert torch.allclose(double(Step(0, 10, latents, None, 0.6, 0.8)), 2 * held)
    assert chained(None, None) is None and chained(hold) is hold
