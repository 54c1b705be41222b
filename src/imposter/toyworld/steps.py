"""One optimisation step of the toy trainers (VAE, denoiser, classifier), their shared log line and lr schedule."""

from __future__ import annotations

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
