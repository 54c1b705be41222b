"""The denoiser loop the toy trainers share (SD's UNet and text encoder, FLUX.1's transformer and T5, the pose
ControlNet): AdamW, warm-up then cosine, gradient clip 1, an exponential moving average of the weights, and
checkpoints (safetensors plus JSON) it resumes from."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..fileio import atomic_directory, write_json
from .steps import cosine_lr, optimizer_step


class _EMA:
    """Exponential moving average of parameters, with the usual warm-up of the decay."""

    def __init__(self, modules: list[torch.nn.Module], decay: float):
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for shadow, param in zip(self.shadow, self.params, strict=True):
            param.copy_(shadow)


def _save_denoiser_state(
    folder: Path, step: int, modules: dict[str, torch.nn.Module], ema: _EMA, optimizer, generator, losses
) -> None:
    """Everything the denoiser loop needs to go on from ``step``, as safetensors plus JSON."""
    from safetensors.torch import save_file

    tensors = {f"{name}.{k}": v for name, module in modules.items() for k, v in module.state_dict().items()}
    tensors |= {f"ema.{i}": v for i, v in enumerate(ema.shadow)}
    for i, param in enumerate(ema.params):
        state = optimizer.state.get(param)
        if state:
            tensors |= {f"adam.{i}.{k}": torch.as_tensor(v) for k, v in state.items()}
    tensors["generator"] = generator.get_state()
    with atomic_directory(folder) as temporary:
        # cloned: tied weights (T5's shared and encoder embeddings) are one tensor, which safetensors refuses
        save_file({k: v.clone() for k, v in tensors.items()}, temporary / "state.safetensors")
        write_json(temporary / "progress.json", {"step": step, "losses": losses})


def _load_denoiser_state(
    folder: Path, modules: dict[str, torch.nn.Module], ema: _EMA, optimizer, generator
) -> tuple[int, list]:
    """Restore what :func:`_save_denoiser_state` wrote; returns (step, losses); (0, []) when there is none."""
    from safetensors.torch import load_file

    if not (folder / "progress.json").is_file():
        return 0, []
    tensors = load_file(folder / "state.safetensors")
    for name, module in modules.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    for i, shadow in enumerate(ema.shadow):
        shadow.copy_(tensors[f"ema.{i}"])
    for i, param in enumerate(ema.params):
        state = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"adam.{i}.")}
        if state:
            optimizer.state[param] = state
    generator.set_state(tensors["generator"])
    progress = json.loads((folder / "progress.json").read_text())
    return int(progress["step"]), list(progress["losses"])


@dataclass(frozen=True)
class DenoiserLoop:
    """The settings of the denoiser loop that the SD and the FLUX toy trainers share."""

    steps: int
    batch: int
    lr: float
    warmup_steps: int
    caption_dropout: float
    ema_decay: float
    checkpoint_every: int
    seed: int
    weight_decay: float = 1e-2


# (scaled latents, caption indices, generator) -> the batch's loss; draws its own noise from the generator
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def fit_denoiser(
    modules: dict[str, torch.nn.Module],
    batch_loss: BatchLoss,
    latents: tuple[torch.Tensor, torch.Tensor, float],
    caption_index: torch.Tensor,
    empty: int,
    loop: DenoiserLoop,
    log: Callable[[str], None],
    progress: bool = True,
    checkpoints: Path | None = None,
) -> list[float]:
    """Train ``modules`` (name -> module; the names prefix their checkpoint keys) on ``batch_loss`` of latents
    drawn from the posteriors ``latents`` = (means, stds, scale), captions replaced by ``empty`` at the
    caption-dropout rate; AdamW, warm-up and cosine lr, gradient clip 1, EMA (left in the modules).

    With ``checkpoints`` (a folder), the loop saves its state there every ``loop.checkpoint_every`` steps
    and starts from the last one it finds.
    """
    means, stds, scale = latents
    params = [p for module in modules.values() for p in module.parameters()]
    optimizer = torch.optim.AdamW(params, lr=loop.lr, weight_decay=loop.weight_decay)
    ema = _EMA(list(modules.values()), loop.ema_decay)
    generator = torch.Generator().manual_seed(loop.seed + 2)
    first, losses = (
        (0, [])
        if checkpoints is None
        else _load_denoiser_state(checkpoints, modules, ema, optimizer, generator)
    )
    if first:
        log(f"resuming the denoiser at step {first} from {checkpoints}")
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_lr(s + first, loop.steps, loop.warmup_steps)
    )
    for module in modules.values():
        module.train()
    names = " + ".join(modules)
    for step in tqdm(range(first, loop.steps), desc=f"training {names}", disable=not progress):
        index = torch.randint(len(means), (loop.batch,), generator=generator)
        batch = (means[index] + stds[index] * torch.randn(means[index].shape, generator=generator)) * scale
        chosen = caption_index[index].clone()
        chosen[torch.rand(len(index), generator=generator) < loop.caption_dropout] = empty
        loss = batch_loss(batch, chosen, generator)
        optimizer_step(loss, optimizer, schedule, losses, step, log, next(iter(modules)), clip=params)
        ema.update(step)
        if checkpoints is not None and ((step + 1) % loop.checkpoint_every == 0 or step + 1 == loop.steps):
            _save_denoiser_state(checkpoints, step + 1, modules, ema, optimizer, generator, losses)
    ema.copy_to_model()
    for module in modules.values():
        module.eval()
    return losses


def min_snr_weights(noise_scheduler, gamma: float) -> torch.Tensor:
    """Per-timestep weights of the epsilon loss, min(SNR, gamma) / SNR (min-SNR, Hang et al. 2023)."""
    alphas = noise_scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    return torch.clamp(snr, max=gamma) / snr


def caption_table(captions: list[str]) -> tuple[list[str], torch.Tensor, int]:
    """The distinct captions plus "" (last), each example's index into them, and the index of ""."""
    vocabulary = sorted(set(captions)) + [""]
    return vocabulary, torch.tensor([vocabulary.index(c) for c in captions]), len(vocabulary) - 1
