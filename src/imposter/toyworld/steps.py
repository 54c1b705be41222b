"""One optimisation step of the toy trainers (VAE, denoiser, classifier), their shared log line, lr schedule and
mixed precision."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

LOG_EVERY = 250  # steps between log lines (the mean loss since the previous one)


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    losses: list[float],
    step: int,
    log: Callable[[str], object],
    what: str,
    clip: Iterable[torch.nn.Parameter] | None = None,
) -> None:
    """Backward, optionally clip the gradient norm of ``clip`` to 1, step, record the loss, log every 250."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(clip, 1.0)
    optimizer.step()
    schedule.step()
    losses.append(loss.item())
    if (step + 1) % LOG_EVERY == 0:
        log(f"{what} step {step + 1}: loss {np.mean(losses[-LOG_EVERY:]):.4f}")


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor at ``step``: linear warm-up over ``warmup`` steps, then a cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


PRECISIONS = ("fp32", "bf16")


def mixed_precision(precision: str) -> contextlib.AbstractContextManager:
    """The forward pass's autocast in a convolutional toy trainer (VAE, decoder, classifier, keypoint detector).

    ``"bf16"`` runs convolutions and matrix products in bfloat16 while weights, optimizer state and losses
    stay float32: on this project's CPU (AMX) a VAE step takes 0.35 s against 0.62 s, the classifier's and
    the detector's about half their time (``benchmarks/toy_step_speed.py``); it made the shipped checkpoint
    (v3.2). ``"fp32"``: nothing (what made v3.1). Not for the UNet: its 16x16 latents run slower in
    bfloat16 (0.76 s a step against 0.48).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
