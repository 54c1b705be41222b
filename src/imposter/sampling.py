"""Stepwise text prompting and a per-step hook (ImPoster, Sec. 3.2-3.3) on a family's own pipeline.

Every family samples with its diffusers pipeline's ``__call__``; ``guided_steps`` is the one
``callback_on_step_end`` they all pass, which applies the hook after each scheduler step and switches
the conditioning. Stepwise prompting is ``stepwise_prompts``; frequency guidance is ``FrequencyGuidanceHook``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .errors import ImposterWarning, NumericalError
from .guidance import FrequencyTargets, frequency_guidance_step


@dataclass(frozen=True)
class Step:
    """What a hook sees after scheduler step ``index``."""

    index: int
    timestep: int
    latents: torch.Tensor  # z_{t-1}, the scheduler's output (spatial: B, C, h, w)
    denoised: torch.Tensor | None  # the step's prediction of the clean latents x0 (None: not given)
    # the weight of x0 in z_{t-1}: sqrt(alpha_bar_{t-1}) for DDPM-type models, 1 - sigma_{t-1} for flow matching
    signal_scale: float
    # the weight of the noise in z_{t-1}: sqrt(1 - alpha_bar_{t-1}), or sigma_{t-1}
    noise_scale: float = 0.0


StepHook = Callable[[Step], torch.Tensor]
C = TypeVar("C")  # a conditioning: an embedding tensor, or a family's Conditioning


def stepwise_prompts(driving: C, target: C, k: int) -> Callable[[int], C]:
    """Conditioning schedule: the driving caption for steps 0..k-1, the target caption after (Sec. 3.2)."""
    return lambda index: driving if index < k else target


def check_finite(latents: torch.Tensor, index: int, timestep: float) -> None:
    """NumericalError if the latents hold a NaN or an infinity after denoising step ``index``."""
    if not torch.isfinite(latents).all():
        raise NumericalError(
            f"the latents became NaN or infinite at denoising step {index} (timestep {int(timestep)}); "
            "lower $amp_scale/$phase_scale, or run in float32 with $dtype float32"
        )


def alpha_prod_at(scheduler, timestep: int | None) -> float:
    """alpha_bar of ``timestep`` (None or negative: past the last step, the scheduler's final alpha_bar)."""
    if timestep is None or timestep < 0:
        final = getattr(scheduler, "final_alpha_cumprod", None)
        return float(final) if final is not None else 1.0
    return float(scheduler.alphas_cumprod[int(timestep)])


# what a family shows the hook of its pipeline's latents: a Step's latents, denoised, signal_scale, noise_scale
Observation = tuple[torch.Tensor, torch.Tensor | None, float, float]


def guided_steps(
    schedule: Callable[[int], C],
    hook: StepHook | None,
    observe: Callable[[int, torch.Tensor, torch.Tensor], Observation],
    restore: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    carry: Callable[[C], dict[str, torch.Tensor]],
    first: int = 0,
) -> Callable[..., dict[str, torch.Tensor]]:
    """ImPoster's sampling (Sec. 3.2-3.3) as every family's ``callback_on_step_end``: after scheduler step
    ``index`` the hook (frequency guidance) moves the latents, a NaN or an infinity stops the run, and the
    next step gets its conditioning (stepwise prompting: ``schedule(index + 1)``).

    The family says how its pipeline holds these: ``observe(position, timestep, latents)`` gives the hook's
    view of the pipeline's latents (spatial float latents, x0 or None, the weight of x0 in them),
    ``restore(guided, latents)`` puts the hook's result back in the pipeline's form, and
    ``carry(conditioning)`` the callback tensors that hold a conditioning. ``first``: the pipeline's step 0
    is step ``first`` of the schedule (img2img starts late).
    """

    def on_step_end(pipe, position: int, timestep, tensors: dict) -> dict:
        index, latents = first + position, tensors["latents"]
        if hook is not None:
            spatial, denoised, signal_scale, noise_scale = observe(position, timestep, latents)
            step = Step(index, int(timestep), spatial, denoised, signal_scale, noise_scale)
            latents = restore(hook(step), latents)
        check_finite(latents, index, timestep)
        return {"latents": latents, **carry(schedule(index + 1))}

    return on_step_end


@contextlib.contextmanager
def observed(scheduler, first: int = 0) -> Iterator[dict[str, Any]]:
    """Inside the block ``scheduler.step`` keeps its last input latents under "sample" of the yielded dict and
    its output under "out" (with the x0 prediction ``pred_original_sample``, where the scheduler gives one):
    what a pipeline's ``callback_on_step_end`` is not handed. With ``first`` > 0, ``set_timesteps`` drops the
    steps before it, as diffusers' img2img pipelines do (``StableDiffusionImg2ImgPipeline.get_timesteps``).
    The scheduler is left as it was after the block."""
    seen: dict[str, Any] = {}
    step, set_timesteps = scheduler.step, scheduler.set_timesteps

    @functools.wraps(step)
    def keeping(model_output, timestep, sample, *args, return_dict: bool = True, **kwargs):
        seen["sample"] = sample
        seen["out"] = step(model_output, timestep, sample, *args, return_dict=True, **kwargs)
        return seen["out"] if return_dict else seen["out"].to_tuple()

    @functools.wraps(set_timesteps)
    def starting_late(*args, **kwargs):
        set_timesteps(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[first:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(first)

    own = {name for name in ("step", "set_timesteps") if name in vars(scheduler)}
    scheduler.step = keeping
    if first:
        scheduler.set_timesteps = starting_late
    try:
        yield seen
    finally:
        for name, original in (("step", step), ("set_timesteps", set_timesteps)):
            if name in own:
                setattr(scheduler, name, original)
            else:
                vars(scheduler).pop(name, None)


@dataclass(frozen=True)
class FrequencyGuidanceHook:
    """Applies ``z - s_a grad G_a - s_p grad G_p`` after every scheduler step (Sec. 3.3).

    ``space="noisy"`` guides z_{t-1} itself, as the paper and the authors' code do. ``space="denoised"``
    guides the step's clean-latent prediction x0 and moves z_{t-1} by the weight of x0 in it times that
    change (DDIM at eta 0: z_{t-1} = sqrt(alpha_bar_{t-1}) x0 + sqrt(1 - alpha_bar_{t-1}) eps; flow
    matching: z_{t-1} = (1 - sigma_{t-1}) x0 + sigma_{t-1} eps).
    """

    targets: FrequencyTargets
    amp_scale: float
    phase_scale: float
    distance: str = "cos"
    space: str = "noisy"
    until_step: int | None = None  # guide steps 0 .. until_step - 1 only (None: every step)

    def __call__(self, step: Step) -> torch.Tensor:
        if self.until_step is not None and step.index >= self.until_step:
            return step.latents
        if self.space == "denoised" and step.denoised is None and step.index == 0:
            warnings.warn(
                ImposterWarning(
                    "$guidance_space denoised needs the scheduler's x0 prediction, which this scheduler "
                    "does not give; guiding the noisy latents instead (use DDIM, or $guidance_space noisy)"
                ),
                stacklevel=2,
            )
        if self.space == "noisy" or step.denoised is None:
            return frequency_guidance_step(
                step.latents, self.targets, self.amp_scale, self.phase_scale, self.distance
            )
        guided = frequency_guidance_step(
            step.denoised, self.targets, self.amp_scale, self.phase_scale, self.distance
        )
        return step.latents + step.signal_scale * (guided - step.denoised)


@dataclass(frozen=True)
class HoldRegion:
    """Holds the latents inside ``mask`` to ``latents`` noised by ``noise`` to each step's level, for the steps
    before ``until_step``; the rest of the picture denoises freely (blended latent diffusion, Avrahami et al.
    2023: the figure starts later, at a lower strength, than its surroundings). ``mask``: (1, 1, h, w) in
    [0, 1]; ``latents``: (1 or B, C, h, w) clean latents; ``noise``: (B, C, h, w), the run's own."""

    latents: torch.Tensor
    noise: torch.Tensor
    mask: torch.Tensor
    until_step: int

    def __call__(self, step: Step) -> torch.Tensor:
        if step.index >= self.until_step:
            return step.latents
        held = step.signal_scale * self.latents + step.noise_scale * self.noise
        mask = self.mask.to(step.latents)
        return mask * held.to(step.latents) + (1 - mask) * step.latents


def chained(*hooks: StepHook | None) -> StepHook | None:
    """One hook that applies ``hooks`` (Nones skipped) in order; None when there are none."""
    present = [hook for hook in hooks if hook is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def run(step: Step) -> torch.Tensor:
        for hook in present:
            step = dataclasses.replace(step, latents=hook(step))
        return step.latents

    return run
