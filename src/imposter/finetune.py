"""Fine-tuning (ImPoster, Sec. 3.1): one training loop, with what is trained and the loss plugged in.

``train`` is the loop. Each iteration it asks an :class:`Objective` for its losses, one per optimizer
update, and steps on each: ImPoster's LoRA makes one update per iteration (both pairs in one batch),
the authors' release two (source, then driving), HiPer and ADI one on their text tensors (their
objectives live beside them, in ``methods/``). An objective computes its losses with a model family's
:class:`~imposter.families.losses.TrainingLoss`: by default SD 1.x/2.x's
:class:`~imposter.families.losses.DenoisingLoss`, epsilon (or v) MSE at uniform timesteps; another family
(SDXL, FLUX.1's flow matching) passes its own with the same two methods.

``finetune_lora``: LoRA on the attention projections, both pairs in one batch per step (the paper).
``finetune_full_authors``: what the authors' released code does instead: every UNet weight (plus a
rank-4 LoRA) trained with Adam at lr 2e-6, two separate updates per iteration, in float32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .config import FinetuneConfig
from .errors import NumericalError
from .families.base import Conditioning
from .families.losses import DenoisingLoss, TrainingLoss
from .lora import ADAPTER_NAME, add_lora, lora_state_dict, own_adapter


def check_loss(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise NumericalError(
            f"the fine-tuning loss became NaN or infinite at step {step}; lower the learning rate or use $dtype float32"
        )


def _autocast(device: torch.device, dtype: torch.dtype):
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16):
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


class Objective:
    """What a fine-tune learns: the losses of one iteration, and how each becomes gradients.

    The loop calls, for every loss ``losses`` yields: ``zero_grad``, ``backward(loss)``, the optimizer's
    ``step``, ``after_update()``. The next loss is computed after that update. ``model`` is what it trains.
    """

    model: Any

    @functools.cached_property
    def dtype(self) -> torch.dtype:
        """``model``'s compute dtype, read once: diffusers finds it by walking every module, each time."""
        return self.model.dtype

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """One loss per optimizer update of this iteration; random draws come from ``generator``."""
        raise NotImplementedError

    def backward(self, loss: torch.Tensor) -> None:
        """Fill the trainable tensors' ``.grad`` from ``loss``."""
        loss.backward()

    def after_update(self) -> None:
        """Runs after each optimizer step (e.g. to undo the update on masked entries)."""


def train(
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    steps: int,
    seed: int,
    description: str = "fine-tuning",
    progress: bool = True,
) -> list[float]:
    """The training loop: ``steps`` iterations of ``objective``; returns every update's loss.

    The noise and timesteps come from one CPU generator seeded with ``seed``, so a fine-tune is the
    same on every device. A NaN or infinite loss stops it with a NumericalError.
    """
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for step in tqdm(range(steps), desc=description, disable=not progress, leave=False):
        for loss in objective.losses(generator):
            check_loss(loss, step)
            optimizer.zero_grad(set_to_none=True)
            objective.backward(loss)
            optimizer.step()
            objective.after_update()
            losses.append(loss.item())
    return losses


@dataclass
class PairsObjective(Objective):
    """``model`` learns the (latents[i], conditioning[i]) pairs.

    All pairs in one batch per update (ImPoster), or, with ``update_per_pair``, one noise draw per
    iteration and one update per pair in turn (the authors' release).
    """

    model: Any
    loss: TrainingLoss
    latents: torch.Tensor
    conditioning: torch.Tensor | Conditioning  # one row per pair
    parameters: list[torch.nn.Parameter]
    update_per_pair: bool = False
    max_grad_norm: float | None = None  # clip the gradient norm of ``parameters`` before each step

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        if self.update_per_pair:
            noise, timesteps = self.loss.draw(generator, self.latents[:1])
            for i in range(self.latents.shape[0]):
                row = slice(i, i + 1)
                yield self.loss(
                    self.model, self.latents[row], self.conditioning[row], noise, timesteps, self.dtype
                )
            return
        noise, timesteps = self.loss.draw(generator, self.latents)
        with _autocast(self.latents.device, self.dtype):
            loss = self.loss(self.model, self.latents, self.conditioning, noise, timesteps, self.dtype)
        yield loss  # outside autocast: the backward pass runs as it would without it

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)


@contextlib.contextmanager
def checkpointing(model, on: bool | None) -> Iterator[None]:
    """Gradient checkpointing on ``model`` inside the block when ``on`` (same gradients, less memory)."""
    if not on:
        yield
        return
    model.enable_gradient_checkpointing()
    try:
        yield
    finally:
        model.disable_gradient_checkpointing()


def finetune_lora(
    unet,
    scheduler,
    latents: torch.Tensor,
    embeds: torch.Tensor | Conditioning,
    config: FinetuneConfig,
    progress: bool = True,
    loss: TrainingLoss | None = None,
    prefix: str = "unet",
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Train a LoRA on (latents[i], embeds[i]) pairs, all in one batch per step; return its weights and losses.

    ``unet``: the denoiser (FLUX.1's transformer too); ``loss``: the family's training loss (default: SD's,
    from ``scheduler``); ``prefix``: the weights' key prefix in diffusers' format. The adapter is removed
    from ``unet`` afterwards (any LoRA of the user's stays), so the model is left as it was.
    """
    loss = loss or DenoisingLoss.for_scheduler(scheduler)
    with own_adapter(unet), checkpointing(unet, config.gradient_checkpointing):
        params = add_lora(unet, config)
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        objective = PairsObjective(unet, loss, latents, embeds, params, max_grad_norm=config.max_grad_norm)
        unet.train()
        try:
            losses = train(objective, optimizer, config.steps, config.seed, "fine-tuning (LoRA)", progress)
            return lora_state_dict(unet, prefix=prefix), losses
        finally:
            unet.eval()


def finetune_full_authors(
    unet,
    scheduler,
    latents: torch.Tensor,
    embeds: torch.Tensor,
    config: FinetuneConfig,
    progress: bool = True,
    loss: TrainingLoss | None = None,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The released code's training: full UNet + rank-4 LoRA, Adam, fp32, one update per pair per iteration.

    Each iteration draws one noise sample and one timestep, then steps on pair 0 (source) and then on
    pair 1 (driving). The LoRA is merged into the weights at the end. Returns the fine-tuned UNet's state
    dict (on the CPU, in the UNet's dtype) and the losses; ``unet`` itself is restored afterwards.
    """
    original = {k: v.detach().to("cpu", copy=True) for k, v in unet.state_dict().items()}
    original_dtype = unet.dtype
    loss = loss or DenoisingLoss.for_scheduler(scheduler)
    if original_dtype != torch.float32:
        unet.to(torch.float32)
    add_lora(unet, config)
    unet.requires_grad_(True)
    params = list(unet.parameters())
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    objective = PairsObjective(unet, loss, latents, embeds, params, update_per_pair=True)
    unet.train()
    try:
        losses = train(objective, optimizer, config.steps, config.seed, "fine-tuning (full UNet)", progress)
        unet.fuse_lora(adapter_names=[ADAPTER_NAME])
        unet.unload_lora()
        state = {k: v.detach().to("cpu", original_dtype, copy=True) for k, v in unet.state_dict().items()}
        return state, losses
    finally:
        if getattr(unet, "peft_config", None):
            unet.unload_lora()
        unet.zero_grad(set_to_none=True)  # no gradients left on the user's model
        unet.requires_grad_(False)
        unet.eval()
        if original_dtype != torch.float32:
            unet.to(original_dtype)
        unet.load_state_dict(original)
