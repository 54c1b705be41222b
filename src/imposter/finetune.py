"""Fine-tuning the UNet on the (image, caption) pairs with the denoising loss (ImPoster, Sec. 3.1).

``finetune_lora``: LoRA on the attention projections, both pairs in one batch per step (the paper).
``finetune_full_authors``: what the authors' released code does instead: every UNet weight (plus a
rank-4 LoRA) trained with Adam at lr 2e-6, two separate updates per iteration, in float32.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import FinetuneConfig
from .errors import NumericalError

ADAPTER_NAME = "imposter"


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch's global generator (LoRA init draws from it) without disturbing the caller's state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def noise_scheduler_for(scheduler):
    """A DDPM scheduler with the pipeline's betas and prediction type, for adding training noise."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler.config)


def denoising_loss(
    unet,
    noise_scheduler,
    latents: torch.Tensor,
    embeds: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
) -> torch.Tensor:
    """The diffusion training loss: MSE between the UNet's output and its target (epsilon or v)."""
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(noisy.to(unet.dtype), timesteps, encoder_hidden_states=embeds.to(unet.dtype)).sample
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"unsupported prediction type {kind!r}")
    return F.mse_loss(prediction.float(), target.float())


def draw_noise(generator: torch.Generator, latents: torch.Tensor, num_train_timesteps: int, count: int):
    """Noise like ``latents`` and ``count`` uniform timesteps, drawn on the CPU so every device agrees."""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    timesteps = torch.randint(0, num_train_timesteps, (count,), generator=generator).to(latents.device)
    return noise, timesteps


def check_loss(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise NumericalError(
            f"the fine-tuning loss became NaN or infinite at step {step}; lower the learning rate or use --dtype float32"
        )


def _autocast(device: torch.device, dtype: torch.dtype):
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16):
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def add_lora(unet, config: FinetuneConfig, adapter_name: str = ADAPTER_NAME) -> list[torch.nn.Parameter]:
    """Add a fresh LoRA adapter (seeded init, float32 weights) and return its trainable parameters."""
    from peft import LoraConfig

    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.rank,  # scale 1, as diffusers' DreamBooth-LoRA script
        init_lora_weights="gaussian",
        target_modules=list(config.target_modules),
    )
    with _seeded(config.seed):
        unet.add_adapter(lora, adapter_name=adapter_name)
    params = [p for n, p in unet.named_parameters() if f".{adapter_name}." in n and "lora_" in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def lora_state_dict(unet, adapter_name: str = ADAPTER_NAME) -> dict[str, torch.Tensor]:
    """The adapter's weights in diffusers' format (``unet.``-prefixed keys), on the CPU."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=adapter_name))
    return {f"unet.{k}": v.detach().to("cpu", torch.float32).clone() for k, v in state.items()}


def finetune_lora(
    unet,
    scheduler,
    latents: torch.Tensor,
    embeds: torch.Tensor,
    config: FinetuneConfig,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Train a LoRA on (latents[i], embeds[i]) pairs, all in one batch per step; return its weights and losses.

    The adapter is removed from ``unet`` afterwards, so the model is left as it was.
    """
    noise_scheduler = noise_scheduler_for(scheduler)
    params = add_lora(unet, config)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    count = latents.shape[0]
    losses: list[float] = []
    unet.train()
    try:
        for step in tqdm(range(config.steps), desc="fine-tuning (LoRA)", disable=not progress, leave=False):
            noise, timesteps = draw_noise(
                generator, latents, noise_scheduler.config.num_train_timesteps, count
            )
            with _autocast(latents.device, unet.dtype):
                loss = denoising_loss(unet, noise_scheduler, latents, embeds, noise, timesteps)
            check_loss(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
        return lora_state_dict(unet), losses
    finally:
        unet.eval()
        unet.unload_lora()  # removes peft's wrappers too; delete_adapters would leave them in place


def finetune_full_authors(
    unet,
    scheduler,
    latents: torch.Tensor,
    embeds: torch.Tensor,
    config: FinetuneConfig,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The released code's training: full UNet + rank-4 LoRA, Adam, fp32, one update per pair per iteration.

    Each iteration draws one noise sample and one timestep, then steps on pair 0 (source) and then on
    pair 1 (driving). The LoRA is merged into the weights at the end. Returns the fine-tuned UNet's state
    dict (on the CPU, in the UNet's dtype) and the losses; ``unet`` itself is restored afterwards.
    """
    original = {k: v.detach().to("cpu", copy=True) for k, v in unet.state_dict().items()}
    original_dtype = unet.dtype
    noise_scheduler = noise_scheduler_for(scheduler)
    if original_dtype != torch.float32:
        unet.to(torch.float32)
    add_lora(unet, config)
    unet.requires_grad_(True)
    optimizer = torch.optim.Adam(unet.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    unet.train()
    try:
        for step in tqdm(
            range(config.steps), desc="fine-tuning (full UNet)", disable=not progress, leave=False
        ):
            noise, timesteps = draw_noise(
                generator, latents[:1], noise_scheduler.config.num_train_timesteps, 1
            )
            for i in range(latents.shape[0]):
                loss = denoising_loss(
                    unet, noise_scheduler, latents[i : i + 1], embeds[i : i + 1], noise, timesteps
                )
                check_loss(loss, step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
        unet.fuse_lora(adapter_names=[ADAPTER_NAME])
        unet.unload_lora()
        state = {k: v.detach().to("cpu", original_dtype, copy=True) for k, v in unet.state_dict().items()}
        return state, losses
    finally:
        if getattr(unet, "peft_config", None):
            unet.unload_lora()
        unet.requires_grad_(False)
        unet.eval()
        if original_dtype != torch.float32:
            unet.to(original_dtype)
        unet.load_state_dict(original)
