"""The toy pose ControlNet: the last stage of ``imposter toy train``, or ``imposter toy controlnet --model DIR``
beside a trained toy pipeline.

Our DensePose is exact: every pretraining example's part map (``render.render_part_map``: each body part in
its own colour, the figure's own proportions) is rendered with it. The ControlNet starts as diffusers'
``ControlNetModel.from_unet`` of the pipeline's UNet (its encoder copied, zero convolutions out) and learns
the denoising loss (epsilon, min-SNR-5, as the UNet) through the *frozen* UNet and text encoder, with no
empty captions (diffusers' examples/controlnet/train_controlnet.py: ``proportion_empty_prompts`` 0). Saved
in safetensors to ``DIR/controlnet``, where ``pose-control`` on that model finds it. Resumable: checkpoints
every ``checkpoint_every`` steps in ``DIR/controlnet.work``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from ..controlnet import controlnet_for
from ..fileio import atomic_directory, write_json
from .denoiser_loop import DenoiserLoop, caption_table, fit_denoiser, min_snr_weights
from .pairs import training_figure
from .render import render, render_part_map
from .train import encode_examples

CONTROLNET_FOLDER = "controlnet"


@dataclass(frozen=True)
class ToyControlNetConfig:
    """The stage's recipe; the defaults made the shipped toy ControlNet (its training.json)."""

    seed: int = 0
    examples: int = 10_000  # rendered with their part maps (pretraining stream, seed + 1: not the UNet's)
    steps: int = 3_000
    batch: int = 32
    lr: float = 5e-4  # the zero convolutions start at 0: a tiny model from them learns at the UNet's rate
    warmup_steps: int = 100
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # as the UNet (train.ToyTrainConfig)
    threads: int = 2
    checkpoint_every: int = 250


def render_examples_with_maps(count: int, seed: int, progress: bool = True):
    """``count`` pretraining images, their part maps (both (N, 64, 64, 3) uint8) and captions."""
    rng = np.random.default_rng(seed)
    images, maps, captions = [], [], []
    for index in tqdm(range(count), desc="rendering with part maps", disable=not progress, leave=False):
        figure, pose, text = training_figure(rng, seed, index)
        images.append(np.asarray(render(figure, pose), dtype=np.uint8))
        maps.append(np.asarray(render_part_map(figure, pose), dtype=np.uint8))
        captions.append(text)
    return np.stack(images), np.stack(maps), captions


@torch.no_grad()
def _examples(pipe, config: ToyControlNetConfig, progress: bool) -> tuple[torch.Tensor, ...]:
    """The training examples: latent posteriors (means, stds), part maps in [0, 1] (as the pipelines feed
    them), the distinct captions' embeddings and each example's index into them."""
    images, maps, captions = render_examples_with_maps(config.examples, config.seed + 1, progress)
    means, stds = encode_examples(pipe.vae, images)
    conditions = torch.from_numpy(maps).permute(0, 3, 1, 2).float() / 255.0
    vocabulary, caption_index, _ = caption_table(captions)
    tokenizer = pipe.tokenizer
    token_ids = tokenizer(
        vocabulary, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids
    return means, stds, conditions, pipe.text_encoder(token_ids)[0], caption_index


def train_pose_controlnet(
    pipe,
    config: ToyControlNetConfig,
    log: Callable[[str], None] = print,
    progress: bool = True,
    checkpoints: Path | None = None,
):
    """Train a pose ControlNet for the toy ``pipe`` (its UNet and text encoder stay frozen); returns it with
    its EMA weights, and the losses."""
    from diffusers import DDPMScheduler

    unet = pipe.unet
    for module in (unet, pipe.text_encoder, pipe.vae):
        module.requires_grad_(False).eval()
    torch.manual_seed(config.seed)
    controlnet = controlnet_for(unet, pipe.vae_scale_factor, width=16)
    means, stds, conditions, caption_embeds, caption_index = _examples(pipe, config, progress)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    weight = min_snr_weights(noise_scheduler, config.min_snr_gamma)

    def batch_loss(latents: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # ``chosen`` holds example indices (no caption dropout): each one's caption and part map
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (len(latents),), generator=generator
        )
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        embeds = caption_embeds[caption_index[chosen]]
        down, middle = controlnet(
            noisy,
            timesteps,
            encoder_hidden_states=embeds,
            controlnet_cond=conditions[chosen],
            return_dict=False,
        )
        prediction = unet(
            noisy,
            timesteps,
            encoder_hidden_states=embeds,
            down_block_additional_residuals=down,
            mid_block_additional_residual=middle,
        ).sample
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        return (weight[timesteps] * per_sample).mean()

    loop = DenoiserLoop(
        config.steps, config.batch, config.lr, config.warmup_steps, 0.0, config.ema_decay,
        config.checkpoint_every, config.seed,
    )  # fmt: skip
    index = torch.arange(config.examples)  # the "caption" the loop hands over is the example's index
    scale = pipe.vae.config.scaling_factor
    losses = fit_denoiser(
        {"controlnet": controlnet}, batch_loss, (means, stds, scale), index, -1, loop, log, progress,
        checkpoints,
    )  # fmt: skip
    return controlnet.eval().requires_grad_(False), losses


def map_effect(pipe, controlnet, pairs: int = 8, seed: int = 0) -> dict[str, float]:
    """How much the map moves the figure: pose IoU to the ground truth of sampling the target caption with
    the ground truth's map vs without any ControlNet, over ``pairs`` tune pairs (one seed each)."""
    from ..config import SamplingConfig
    from ..controlnet import controlled, pose_map_tensor
    from ..families import family_of
    from ..families.base import Conditioning, SamplingPlan
    from .figures import figure_mask, mask_iou
    from .pairs import make_pairs

    scores: dict[str, list[float]] = {"with_map": [], "without": []}
    for toy in make_pairs(pairs, seed, "tune"):
        ids = pipe.tokenizer(
            [toy.target_prompt, ""], padding="max_length", max_length=pipe.tokenizer.model_max_length,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        with torch.no_grad():
            target, empty = pipe.text_encoder(ids)[0].chunk(2)
        noise = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(seed))
        for name in scores:
            pose = pose_map_tensor(toy.target_pose_map, noise.device, noise.dtype)
            context = controlled(pipe.unet, controlnet, pose, 1.0 if name == "with_map" else 0.0)
            plan = SamplingPlan(  # SamplingConfig defaults: 50 steps, CFG 7.5
                lambda i, target=target: Conditioning(target),
                Conditioning(empty),
                SamplingConfig(),
                progress=False,
            )
            with context, torch.no_grad():
                latents = family_of(pipe).sample(pipe, noise, plan)
            image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
            pixels = ((image[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            scores[name].append(mask_iou(figure_mask(Image.fromarray(pixels)), figure_mask(toy.target_image)))
    return {f"pose_iou_{name}": float(np.mean(values)) for name, values in scores.items()}


def add_pose_controlnet(
    folder: str | Path,
    config: ToyControlNetConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Train the pose ControlNet of the toy pipeline in ``folder`` and save it to ``folder/controlnet``;
    record the stage (and how much the map moves the figure) in ``folder/training.json``."""
    from ..models import load_pipeline

    folder, config = Path(folder), config or ToyControlNetConfig()
    torch.set_num_threads(config.threads)
    pipe = load_pipeline(str(folder), "cpu", log=lambda _: None)
    start = time.perf_counter()
    work = folder / f"{CONTROLNET_FOLDER}.work"
    controlnet, losses = train_pose_controlnet(pipe, config, log, progress, checkpoints=work)
    seconds = time.perf_counter() - start
    log(f"pose ControlNet trained in {seconds:.0f} s; final loss {np.mean(losses[-100:]):.4f}")
    effect = map_effect(pipe, controlnet)
    log(f"the ground truth's part map on 8 tune pairs: {json.dumps(effect)}")
    with atomic_directory(folder / CONTROLNET_FOLDER) as staged:
        controlnet.save_pretrained(staged, safe_serialization=True)
        (staged / "losses.json").write_text(json.dumps([round(x, 5) for x in losses[::10]]))
    shutil.rmtree(work, ignore_errors=True)
    summary = json.loads((folder / "training.json").read_text())
    summary["controlnet"] = {
        "config": asdict(config), "seconds": round(seconds, 1), "command": command,
        "final_loss": float(np.mean(losses[-100:])), "map_effect": effect,
    }  # fmt: skip
    write_json(folder / "training.json", summary)
    return summary["controlnet"]
