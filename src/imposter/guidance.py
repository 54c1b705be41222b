"""Frequency guidance (ImPoster, arXiv 2409.15650, Sec. 3.3): pure tensor functions, no model code.

At each denoising step the latents are moved down the gradient of two losses on their 2D Fourier
transform over the spatial axes:

    z <- z - s_a * grad G_a(z) - s_p * grad G_p(z)

- ``G_a``: squared distance between the Fourier amplitude of ``z`` and that of the *source* latents
  (the amplitude carries appearance: colours, textures).
- ``G_p``: distance between the Fourier phase of ``z`` and that of the *driving* latents (the phase
  carries structure: where things are, hence the pose).

Normalization decides what a scale means, so it is explicit (:class:`Normalization`):

- ``"sum"`` (ours): orthonormal FFT (``norm="ortho"``, so the transform preserves energy and the losses
  do not grow with resolution) and the loss *summed* over channels and frequencies of each sample. The
  gradient step then acts per element at a size independent of the latent resolution, and for the
  amplitude term ``s_a = 0.5`` replaces the amplitude by the source's outright (a gradient step of 1/2 on
  ``sum (|Z| - A)^2`` with a unitary transform lands on ``A * Z/|Z|``); ``0 < s_a < 0.5`` moves part way.
- ``"paper"``: what the authors' released code computes: unnormalized FFT and ``mse_loss`` (mean over
  every element of the batch). The paper's ``s_a = 1e-6, s_p = 1e-3`` are stated in this normalization;
  at SD's 4x64x64 latents they move each element by ~1e-7 per step, i.e. nothing (measured in the
  tests), which the authors never saw because their guidance had no gradient at all.

With ``"sum"`` each sample of a batch is guided independently of the others; with ``"paper"`` the mean
couples the step size to the batch size, exactly as the original code does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .config import NORMALIZATIONS, PHASE_DISTANCES

PhaseDistance = Literal["cos", "abs"]
Normalization = Literal["sum", "paper"]


def spectrum(latents: torch.Tensor, normalization: Normalization = "sum") -> torch.Tensor:
    """2D FFT of ``latents`` (..., H, W) over the two spatial axes, in at least float32 precision."""
    norm = "ortho" if normalization == "sum" else "backward"
    precise = latents.to(torch.promote_types(latents.dtype, torch.float32))
    return torch.fft.fft2(precise, dim=(-2, -1), norm=norm)


def amplitude(latents: torch.Tensor, normalization: Normalization = "sum") -> torch.Tensor:
    """Fourier amplitude ``|F(z)|`` of the latents."""
    return spectrum(latents, normalization).abs()


def phase(latents: torch.Tensor, normalization: Normalization = "sum") -> torch.Tensor:
    """Fourier phase ``angle(F(z))`` of the latents, in (-pi, pi]."""
    return torch.angle(spectrum(latents, normalization))


def _reduce(per_element: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """Per-sample loss: sum over (C, H, W) for ``"sum"``; for ``"paper"`` the batch mean, per sample."""
    per_sample = per_element.flatten(1).sum(dim=1)
    if normalization == "paper":
        return per_sample / per_element.numel()
    return per_sample


def amplitude_loss(
    latents: torch.Tensor, source_amplitude: torch.Tensor, normalization: Normalization = "sum"
) -> torch.Tensor:
    """G_a per sample: squared distance between ``|F(latents)|`` and the source amplitude."""
    diff = amplitude(latents, normalization) - source_amplitude
    return _reduce(diff.square(), normalization)


def _stable_angle(spec: torch.Tensor) -> torch.Tensor:
    """``angle(spec)`` whose gradient stays finite where the amplitude is 0 (atan2 of 0/0 is undefined)."""
    tiny = torch.finfo(spec.real.dtype).tiny ** 0.5
    return torch.atan2(spec.imag, spec.real + (spec.abs() < tiny) * tiny)


def low_pass_mask(height: int, width: int, cutoff: float | None) -> torch.Tensor | None:
    """(H, W) 1.0 at the FFT frequencies within ``cutoff`` cycles per latent pixel (radially), else 0.0.

    In ``fft2``'s layout. None (every frequency) for ``cutoff`` None; the largest radius is about 0.71.
    """
    if cutoff is None:
        return None
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[None, :]
    return ((fy.square() + fx.square()).sqrt() <= cutoff + 1e-12).to(torch.float32)


def phase_loss(
    latents: torch.Tensor,
    driving_phase: torch.Tensor,
    distance: PhaseDistance = "cos",
    normalization: Normalization = "sum",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """G_p per sample: distance between the phase of ``latents`` and the driving phase.

    ``"cos"``: ``1 - cos(phi - psi)``, zero exactly when the phases agree and blind to the 2*pi wrap.
    ``"abs"``: ``(|phi| - |psi|)^2``, the authors' formula: it compares absolute angles, so a phase and
    its negative count as equal and phases near +-pi are far apart across the wrap.
    ``weight`` (H, W), e.g. :func:`low_pass_mask`, weights each frequency (None: all equally).
    """
    angle = _stable_angle(spectrum(latents, normalization))
    if distance == "cos":
        per_element = 1.0 - torch.cos(angle - driving_phase)
    elif distance == "abs":
        per_element = (angle.abs() - driving_phase.abs()).square()
    else:
        raise ValueError(f"phase distance must be one of {PHASE_DISTANCES}, got {distance!r}")
    if weight is not None:
        per_element = per_element * weight.to(per_element)
    return _reduce(per_element, normalization)


@dataclass(frozen=True)
class FrequencyTargets:
    """The reference spectra of one run: source amplitude and driving phase, computed once."""

    amplitude: torch.Tensor | None
    phase: torch.Tensor | None
    normalization: Normalization = "sum"
    phase_weight: torch.Tensor | None = None  # (H, W) per-frequency weight of G_p; None: every frequency

    @classmethod
    def from_latents(
        cls,
        source_latents: torch.Tensor | None,
        driving_latents: torch.Tensor | None,
        normalization: Normalization = "sum",
        phase_cutoff: float | None = None,
    ) -> FrequencyTargets:
        """Targets from the clean VAE latents of the source and driving images.

        ``phase_cutoff``: guide the phase only up to this frequency (cycles per latent pixel), see
        :func:`low_pass_mask`; None guides every frequency, as the paper.
        """
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        amp = None if source_latents is None else amplitude(source_latents, normalization)
        pha = None if driving_latents is None else phase(driving_latents, normalization)
        weight = None
        if driving_latents is not None:
            weight = low_pass_mask(*driving_latents.shape[-2:], phase_cutoff)
        return cls(amp, pha, normalization, weight)


def guidance_losses(
    latents: torch.Tensor, targets: FrequencyTargets, distance: PhaseDistance = "cos"
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(G_a, G_p) per sample for ``latents``; None where the target is missing."""
    g_a = (
        None
        if targets.amplitude is None
        else amplitude_loss(latents, targets.amplitude, targets.normalization)
    )
    g_p = (
        None
        if targets.phase is None
        else phase_loss(latents, targets.phase, distance, targets.normalization, targets.phase_weight)
    )
    return g_a, g_p


def frequency_guidance_step(
    latents: torch.Tensor,
    targets: FrequencyTargets,
    amp_scale: float,
    phase_scale: float,
    distance: PhaseDistance = "cos",
) -> torch.Tensor:
    """One step ``z - s_a grad G_a - s_p grad G_p`` (Sec. 3.3); returns new latents, input untouched.

    A zero scale skips its term, so ``amp_scale = phase_scale = 0`` returns ``latents`` itself.
    """
    if amp_scale == 0 and phase_scale == 0:
        return latents
    if amp_scale != 0 and targets.amplitude is None:
        raise ValueError("amplitude guidance needs the source latents' amplitude")
    if phase_scale != 0 and targets.phase is None:
        raise ValueError("phase guidance needs the driving latents' phase")
    with torch.enable_grad():
        z = latents.detach().to(torch.promote_types(latents.dtype, torch.float32)).requires_grad_(True)
        total = z.new_zeros(())
        if amp_scale != 0:
            total = total + amp_scale * amplitude_loss(z, targets.amplitude, targets.normalization).sum()
        if phase_scale != 0:
            g_p = phase_loss(z, targets.phase, distance, targets.normalization, targets.phase_weight)
            total = total + phase_scale * g_p.sum()
        (grad,) = torch.autograd.grad(total, z)
    return (z.detach() - grad).to(latents.dtype)
