"""The denoising loop with stepwise text prompting and a per-step hook (ImPoster, Sec. 3.2-3.3).

``denoise`` knows nothing of ImPoster: it runs classifier-free guidance with whatever conditioning
``condition_at(i)`` returns at step ``i`` and lets ``hook`` change the latents after each scheduler step.
Stepwise prompting is ``stepwise_prompts``; frequency guidance is ``FrequencyGuidanceHook``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from tqdm.auto import tqdm

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


StepHook = Callable[[Step], torch.Tensor]
C = TypeVar("C")  # a conditioning: an embedding tensor, or a family's Conditioning


def stepwise_prompts(driving: C, target: C, k: int) -> Callable[[int], C]:
    """Conditioning schedule: the driving caption for steps 0..k-1, the target caption after (Sec. 3.2)."""
    return lambda index: driving if index < k else target


def ddim_denoised(
    latents: torch.Tensor, following: torch.Tensor, alpha_prod: float, alpha_prod_next: float
) -> torch.Tensor:
    """x0 from a deterministic DDIM step (eta 0) ``latents`` -> ``following``, for callers that see only the latents.

    Both are sqrt(a) x0 + sqrt(1 - a) eps with the same eps (a = ``alpha_prod``, then ``alpha_prod_next``), two
    equations in x0 and eps; eliminating eps gives x0 exactly (as DDIM's own ``pred_original_sample``).
    """
    a, b = alpha_prod, alpha_prod_next
    mixed = (1 - a) ** 0.5 * following.float() - (1 - b) ** 0.5 * latents.float()
    return mixed / (b**0.5 * (1 - a) ** 0.5 - (1 - b) ** 0.5 * a**0.5)


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


def _step_kwargs(
    scheduler, eta: float, generator: torch.Generator | Sequence[torch.Generator] | None
) -> dict:
    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = eta
    if "generator" in accepted:  # a list: one generator per batch row (diffusers' randn_tensor)
        kwargs["generator"] = list(generator) if isinstance(generator, Sequence) else generator
    return kwargs


def denoise(
    unet,
    scheduler,
    latents: torch.Tensor,
    condition_at: Callable[[int], torch.Tensor],
    uncond: torch.Tensor,
    guidance_scale: float,
    steps: int,
    eta: float = 0.0,
    hook: StepHook | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    progress: bool = True,
    start: int = 0,
) -> torch.Tensor:
    """Denoise ``latents`` (B, C, h, w) from pure noise in ``steps`` scheduler steps; return clean latents.
    With ``start`` > 0 (img2img), ``latents`` are already noised to the timestep of step ``start`` and the
    steps before it are skipped.

    Classifier-free guidance runs as one batched UNet call of [uncond, cond] when ``guidance_scale > 1``.
    ``condition_at(i)`` and ``uncond`` are (1 or B, L, D) text embeddings. ``generator`` draws the
    scheduler's own noise (DDIM with eta > 0): one per row makes each row independent of the batch.
    """
    scheduler.set_timesteps(steps, device=latents.device)
    timesteps = scheduler.timesteps
    batch = latents.shape[0]
    use_cfg = guidance_scale > 1.0
    step_kwargs = _step_kwargs(scheduler, eta, generator)
    dtype = unet.dtype
    if start == 0:
        latents = latents * scheduler.init_noise_sigma
    for index, timestep in enumerate(tqdm(timesteps, desc="denoising", disable=not progress, leave=False)):
        if index < start:
            continue
        cond = condition_at(index).to(dtype).expand(batch, -1, -1)
        if use_cfg:
            model_input = torch.cat([latents, latents])
            context = torch.cat([uncond.to(dtype).expand(batch, -1, -1), cond])
        else:
            model_input, context = latents, cond
        model_input = scheduler.scale_model_input(model_input, timestep)
        with torch.no_grad():
            noise_pred = unet(model_input.to(dtype), timestep, encoder_hidden_states=context).sample
        if use_cfg:
            uncond_pred, cond_pred = noise_pred.float().chunk(2)
            noise_pred = uncond_pred + guidance_scale * (cond_pred - uncond_pred)
        out = scheduler.step(noise_pred.float(), timestep, latents.float(), **step_kwargs)
        latents = out.prev_sample
        if hook is not None:
            following = int(timesteps[index + 1]) if index + 1 < len(timesteps) else None
            denoised = getattr(out, "pred_original_sample", None)
            latents = hook(
                Step(
                    index=index,
                    timestep=int(timestep),
                    latents=latents,
                    denoised=denoised,
                    signal_scale=alpha_prod_at(scheduler, following) ** 0.5,
                )
            )
        check_finite(latents, index, timestep)
    return latents


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
