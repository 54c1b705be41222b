"""DDIM inversion (Song et al., ICLR 2021, Sec. 4.3; as in Null-text Inversion, Mokady et al., CVPR 2023): the
deterministic DDIM update run backwards, from clean latents up to a noise level, so that sampling from
there with the same model and conditioning returns (nearly) the same latents. Pure math on a noise
predictor; the families supply it (``Family.inverted_start``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Predictor = Callable[[torch.Tensor, int], torch.Tensor]  # (latents, timestep) -> predicted noise (epsilon)


def epsilon(
    output: torch.Tensor, latents: torch.Tensor, alpha_prod: float, prediction_type: str
) -> torch.Tensor:
    """The noise a denoiser's ``output`` stands for: itself (epsilon prediction), or from v (v prediction:
    epsilon = sqrt(a) v + sqrt(1 - a) z)."""
    if prediction_type == "epsilon":
        return output
    if prediction_type == "v_prediction":
        return alpha_prod**0.5 * output + (1 - alpha_prod) ** 0.5 * latents
    raise ValueError(f"DDIM inversion reads epsilon or v predictions, not {prediction_type!r}")


@torch.no_grad()
def ddim_inversion(
    predict: Predictor,
    latents: torch.Tensor,
    timesteps: Sequence[int],
    alpha_prod: Callable[[int | None], float],
) -> torch.Tensor:
    """``latents`` (clean) carried up through ``timesteps`` (ascending: the sampler's, reversed) by the inverse
    DDIM step; returns the latents at the last one. Each step reads the noise the model predicts at the
    *next* timestep from the current latents (the usual approximation, as Null-text Inversion's code):
    z_next = sqrt(a_next) x0 + sqrt(1 - a_next) eps, x0 = (z - sqrt(1 - a) eps) / sqrt(a).
    ``alpha_prod(t)``: alpha_bar of timestep t (None: before the first, the clean end)."""
    current = None
    for timestep in timesteps:
        a, a_next = alpha_prod(current), alpha_prod(int(timestep))
        eps = predict(latents, int(timestep))
        clean = (latents - (1 - a) ** 0.5 * eps) / a**0.5
        latents = a_next**0.5 * clean + (1 - a_next) ** 0.5 * eps
        current = int(timestep)
    return latents
