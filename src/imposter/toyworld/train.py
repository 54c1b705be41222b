"""Train the toy pipeline from scratch, reproducibly: ``imposter toy train --out DIR``.

1. Render a fixed, seeded set of pretraining examples (held-out subject/action pairs never appear).
2. Train the VAE to reconstruct them (L1 weighted 5x on the figure, whose few pixels carry the subject's
   colours and the pose, + a small KL term), then set its scaling factor to 1/std of the latents, as
   SD's 0.18215 was chosen.
3. Encode every example once, then train the UNet and the text encoder together on the denoising
   loss (epsilon, min-SNR-5 weighting), with 10% empty captions for classifier-free guidance and an
   exponential moving average of the weights, which is what is saved.
4. Save a StableDiffusionPipeline (safetensors) and measure its text-to-image sanity (``sanity.py``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..fileio import atomic_directory, write_json
from .classify import MASK_THRESHOLD
from .model import ToyModelConfig, assemble_pipeline, build_components
from .pairs import sample_training_example
from .world import BACKGROUND


@dataclass(frozen=True)
class ToyTrainConfig:
    """Training recipe; the defaults are what made the shipped checkpoint (see its training.json)."""

    seed: int = 0
    examples: int = 40_000  # pre-rendered (image, caption) pairs, ~0.5 GB as uint8
    vae_steps: int = 1_000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6  # as SD's VAE: the KL only keeps the latents bounded
    figure_weight: float = 5.0  # L1 weight of figure pixels relative to background pixels
    unet_steps: int = 3_500
    unet_batch: int = 64
    unet_lr: float = 5e-4
    warmup_steps: int = 200
    caption_dropout: float = 0.1  # empty caption, for classifier-free guidance
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # Hang et al. 2023: faster convergence of the epsilon loss
    threads: int = 2
    sanity_samples: int = 4  # generations per (subject, action) in the final sanity check


def _cosine_lr(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def render_examples(count: int, seed: int, progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """``count`` pretraining images (N, 64, 64, 3) uint8 and their captions, from ``seed``."""
    rng = np.random.default_rng(seed)
    images, captions = [], []
    for _ in tqdm(range(count), desc="rendering", disable=not progress, leave=False):
        image, text = sample_training_example(rng)
        images.append(np.asarray(image, dtype=np.uint8))
        captions.append(text)
    return np.stack(images), captions


def _pixels(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _figure(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) 1.0 where a pixel differs from the background colour, as ``classify.figure_mask``."""
    background = torch.tensor(BACKGROUND, dtype=pixels.dtype).view(1, 3, 1, 1) / 127.5 - 1.0
    return ((pixels - background).abs().amax(dim=1, keepdim=True) > MASK_THRESHOLD / 127.5).to(pixels.dtype)


def train_vae(
    vae, images: np.ndarray, config: ToyTrainConfig, log: Callable[[str], None], progress: bool = True
) -> list[float]:
    """Fit the autoencoder on the images; returns the loss per step."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine_lr(s, config.vae_steps, 100))
    losses = []
    vae.train()
    for step in tqdm(range(config.vae_steps), desc="training VAE", disable=not progress):
        batch = _pixels(images[torch.randint(len(images), (config.vae_batch,), generator=generator).numpy()])
        posterior = vae.encode(batch).latent_dist
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(latents).sample
        weight = 1.0 + (config.figure_weight - 1.0) * _figure(batch)
        l1 = (weight * (reconstruction - batch).abs()).sum() / (weight.sum() * batch.shape[1])
        loss = l1 + config.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 250 == 0:
            log(f"vae step {step + 1}: loss {np.mean(losses[-250:]):.4f}")
    vae.eval()
    return losses


@torch.no_grad()
def encode_examples(vae, images: np.ndarray, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image's latents (unscaled)."""
    means, stds = [], []
    for start in range(0, len(images), batch):
        posterior = vae.encode(_pixels(images[start : start + batch])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


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


def train_denoiser(
    components: dict,
    means: torch.Tensor,
    stds: torch.Tensor,
    captions: list[str],
    config: ToyTrainConfig,
    log: Callable[[str], None],
    progress: bool = True,
) -> list[float]:
    """Train UNet and text encoder on scaled latents; leaves the EMA weights in the models."""
    from diffusers import DDPMScheduler

    unet, text_encoder, tokenizer = components["unet"], components["text_encoder"], components["tokenizer"]
    noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
    scale = components["vae"].config.scaling_factor
    vocabulary = sorted(set(captions)) + [""]
    token_ids = tokenizer(
        vocabulary, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids
    caption_index = torch.tensor([vocabulary.index(c) for c in captions])
    empty = len(vocabulary) - 1
    alphas = noise_scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    weight = torch.clamp(snr, max=config.min_snr_gamma) / snr  # min-SNR for epsilon prediction

    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.unet_lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _cosine_lr(s, config.unet_steps, config.warmup_steps)
    )
    ema = _EMA([unet, text_encoder], config.ema_decay)
    generator = torch.Generator().manual_seed(config.seed + 2)
    losses = []
    unet.train()
    text_encoder.train()
    for step in tqdm(range(config.unet_steps), desc="training UNet + text encoder", disable=not progress):
        index = torch.randint(len(means), (config.unet_batch,), generator=generator)
        latents = (means[index] + stds[index] * torch.randn(means[index].shape, generator=generator)) * scale
        chosen = caption_index[index].clone()
        chosen[torch.rand(len(index), generator=generator) < config.caption_dropout] = empty
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (len(index),), generator=generator
        )
        embeds = text_encoder(token_ids[chosen])[0]
        prediction = unet(
            noise_scheduler.add_noise(latents, noise, timesteps), timesteps, encoder_hidden_states=embeds
        ).sample
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (weight[timesteps] * per_sample).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        ema.update(step)
        losses.append(loss.item())
        if (step + 1) % 250 == 0:
            log(f"unet step {step + 1}: loss {np.mean(losses[-250:]):.4f}")
    ema.copy_to_model()
    unet.eval()
    text_encoder.eval()
    return losses


def train_toy_model(
    out: str | Path,
    train: ToyTrainConfig | None = None,
    model: ToyModelConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Train the toy pipeline into ``out`` (replaced atomically); returns the training summary."""
    from .sanity import sanity_check

    train, model = train or ToyTrainConfig(), model or ToyModelConfig()
    torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    images, captions = render_examples(train.examples, train.seed, progress)
    timings["render"] = time.perf_counter() - start
    log(f"rendered {len(images)} examples in {timings['render']:.0f} s")

    components = build_components(model)
    for part in components.values():
        if isinstance(part, torch.nn.Module):
            part.float()
    start = time.perf_counter()
    vae_losses = train_vae(components["vae"], images, train, log, progress)
    timings["vae"] = time.perf_counter() - start
    means, stds = encode_examples(components["vae"], images)
    scaling = float(1.0 / means.std())
    components["vae"].register_to_config(scaling_factor=scaling)
    log(f"VAE trained in {timings['vae']:.0f} s; latent scaling factor {scaling:.4f}")

    start = time.perf_counter()
    unet_losses = train_denoiser(components, means, stds, captions, train, log, progress)
    timings["unet"] = time.perf_counter() - start
    log(f"UNet and text encoder trained in {timings['unet']:.0f} s")

    pipe = assemble_pipeline(components)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.requires_grad_(False)
    start = time.perf_counter()
    sanity = sanity_check(pipe, samples=train.sanity_samples, seed=train.seed, progress=progress)
    timings["sanity"] = time.perf_counter() - start
    log(
        "sanity (train combinations): subject {subject_accuracy:.3f}, action {action_accuracy:.3f}; "
        "held-out combinations: subject {heldout_subject_accuracy:.3f}, action {heldout_action_accuracy:.3f}".format(
            **sanity
        )
    )
    summary = {
        "command": command,
        "train": asdict(train),
        "model": asdict(model),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "latent_scaling_factor": scaling,
        "final_vae_loss": float(np.mean(vae_losses[-100:])),
        "final_unet_loss": float(np.mean(unet_losses[-100:])),
        "sanity": sanity,
        "torch": torch.__version__,
    }
    with atomic_directory(out) as folder:
        pipe.save_pretrained(folder, safe_serialization=True)
        write_json(folder / "training.json", summary)
        (folder / "losses.json").write_text(json.dumps({"vae": vae_losses[::10], "unet": unet_losses[::10]}))
    return summary
