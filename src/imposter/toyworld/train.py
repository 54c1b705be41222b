"""Train the toy pipeline from scratch, reproducibly: ``imposter toy train --out DIR``.

1. Render a fixed, seeded set of pretraining examples (held-out subject/action pairs never appear).
2. Train the VAE to reconstruct them (L1 + L2, weighted 5x on the figure, whose few pixels carry the
   subject and the pose, + a small KL term), then set its scaling factor to 1/std of the latents, as
   SD's 0.18215 was chosen.
3. Train the world's subject/action classifier (``classifier.py``), with round trips through that VAE.
4. Encode every example once, then train the UNet and the text encoder together on the denoising
   loss (epsilon, min-SNR-5 weighting), with 10% empty captions for classifier-free guidance and an
   exponential moving average of the weights, which is what is saved.
5. Save a StableDiffusionPipeline (safetensors) with the classifier, and measure its text-to-image
   sanity (``sanity.py``).

Killed at any point, the same command resumes: finished stages and denoiser checkpoints (every
``checkpoint_every`` steps, safetensors) wait in ``OUT.work/`` until the pipeline is saved.
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
from tqdm.auto import tqdm

from ..fileio import atomic_directory, write_json
from .classifier import ClassifierConfig, array_pixels, save_classifier, train_classifier
from .denoiser_loop import DenoiserLoop, caption_table, fit_denoiser, min_snr_weights
from .figures import MASK_THRESHOLD
from .model import ToyModelConfig, assemble_pipeline, build_components
from .pairs import sample_training_example
from .stages import Stages
from .steps import cosine_lr, mixed_precision, optimizer_step
from .world import BACKGROUND


@dataclass(frozen=True)
class ToyTrainConfig:
    """Training recipe; the defaults are what made the shipped checkpoint (see its training.json)."""

    seed: int = 0
    examples: int = 40_000  # pre-rendered (image, caption) pairs, ~0.5 GB as uint8
    # v1's 1000 left the VAE blurry; v3's second model moved 500 of the first's 2,500 (and 500 of the decoder
    # stage's 1,500) to the UNet, whose 3,000 steps drew the wrong class for a quarter of the captions; v3.2's
    # bf16 forward pass (precision below) pays for 3,000, the first to reach 30 dB on the ground truth (README)
    vae_steps: int = 3_000
    vae_batch: int = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6  # as SD's VAE: the KL only keeps the latents bounded
    figure_weight: float = 5.0  # loss weight of figure pixels relative to background pixels
    vae_l2_weight: float = 1.0  # L2 beside L1: punishes the large errors of blurred edges
    # Then the decoder alone (the encoder frozen, so the latents and all that learns from them stay): the
    # figure's outline. The joint stage leaves a halo of figure colour around it (pose IoU of the ground truth
    # through the VAE 0.941 on the table pairs, mostly extra pixels); a weighted ring of background around
    # the figure sharpens it. Steps, rate and weight chosen on the tune pairs' targets (README, "The model").
    decoder_steps: int = 1_000
    decoder_lr: float = 1e-4
    edge_weight: float = 10.0  # loss weight of the background ring around the figure, in that stage
    edge_width: int = 2  # the ring's width in pixels
    # v3.1's 6,000 drew the right class for 93.4% of training captions, v3.2's 8,000 for 96.1% (issue 20: 95%)
    unet_steps: int = 8_000
    unet_batch: int = 64
    unet_lr: float = 5e-4
    warmup_steps: int = 200
    caption_dropout: float = 0.1  # empty caption, for classifier-free guidance
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # Hang et al. 2023: faster convergence of the epsilon loss
    threads: int = 2
    # The VAE's and decoder's forward in bfloat16 ("bf16", what made the shipped checkpoint: about twice as fast
    # on this CPU, 0.4 dB worse at equal steps) or not ("fp32", v3.1's); ``imposter toy train --precision``
    # sets it for the classifier and the keypoint detector too (steps.py)
    precision: str = "bf16"
    sanity_samples: int = 2  # generations per (subject, action) in the final sanity check
    checkpoint_every: int = 500  # denoiser steps between resumable checkpoints


def render_examples(count: int, seed: int, progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """``count`` pretraining images (N, 64, 64, 3) uint8 and their captions, from ``seed``."""
    rng = np.random.default_rng(seed)
    images, captions = [], []
    for index in tqdm(range(count), desc="rendering", disable=not progress, leave=False):
        image, text = sample_training_example(rng, seed, index)
        images.append(np.asarray(image, dtype=np.uint8))
        captions.append(text)
    return np.stack(images), captions


def _figure(pixels: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) 1.0 where a pixel differs from the background colour, as ``classify.figure_mask``."""
    background = torch.tensor(BACKGROUND, dtype=pixels.dtype).view(1, 3, 1, 1) / 127.5 - 1.0
    return ((pixels - background).abs().amax(dim=1, keepdim=True) > MASK_THRESHOLD / 127.5).to(pixels.dtype)


def _pixel_weights(batch: torch.Tensor, config: ToyTrainConfig, edges: bool) -> torch.Tensor:
    """(N, 1, H, W) loss weights: 1 on the background, ``figure_weight`` on the figure and, with ``edges``,
    ``edge_weight`` on the ring of background ``edge_width`` pixels wide around it."""
    figure = _figure(batch)
    weights = 1.0 + (config.figure_weight - 1.0) * figure
    if edges:
        width = config.edge_width
        ring = F.max_pool2d(figure, 2 * width + 1, stride=1, padding=width) - figure
        weights = weights + (config.edge_weight - 1.0) * ring
    return weights


def train_vae(
    vae,
    images: np.ndarray,
    config: ToyTrainConfig,
    log: Callable[[str], None],
    progress: bool = True,
    decoder_only: bool = False,
) -> list[float]:
    """Fit the autoencoder on the images (``decoder_only``: the decoder's outline stage, the encoder frozen);
    returns the loss per step."""
    steps, lr = (
        (config.decoder_steps, config.decoder_lr) if decoder_only else (config.vae_steps, config.vae_lr)
    )
    generator = torch.Generator().manual_seed(config.seed + (2 if decoder_only else 1))
    vae.requires_grad_(not decoder_only)
    trained = [*vae.decoder.parameters(), *(vae.post_quant_conv.parameters() if vae.post_quant_conv else ())]
    for parameter in trained:
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(trained if decoder_only else vae.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_lr(s, steps, 100))
    losses = []
    vae.train()
    what = "decoder" if decoder_only else "vae"
    for step in tqdm(
        range(steps), desc=f"training {'the decoder' if decoder_only else 'VAE'}", disable=not progress
    ):
        batch = array_pixels(
            images[torch.randint(len(images), (config.vae_batch,), generator=generator).numpy()]
        )
        with mixed_precision(config.precision):
            with torch.set_grad_enabled(not decoder_only):
                posterior = vae.encode(batch).latent_dist
                noise = torch.randn(posterior.mean.shape, generator=generator)
                latents = posterior.mean + posterior.std * noise
            reconstruction = vae.decode(latents).sample.float()
        weight = _pixel_weights(batch, config, edges=decoder_only)
        error = reconstruction - batch
        denominator = weight.sum() * batch.shape[1]
        l1 = (weight * error.abs()).sum() / denominator
        l2 = (weight * error.square()).sum() / denominator
        loss = l1 + config.vae_l2_weight * l2
        if not decoder_only:
            loss = loss + config.kl_weight * posterior.kl().mean()
        optimizer_step(loss, optimizer, schedule, losses, step, log, what)
    vae.eval()
    vae.requires_grad_(False)
    return losses


@torch.no_grad()
def encode_examples(vae, images: np.ndarray, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image's latents (unscaled)."""
    means, stds = [], []
    for start in range(0, len(images), batch):
        posterior = vae.encode(array_pixels(images[start : start + batch])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def train_denoiser(
    components: dict,
    means: torch.Tensor,
    stds: torch.Tensor,
    captions: list[str],
    config: ToyTrainConfig,
    log: Callable[[str], None],
    progress: bool = True,
    checkpoints: Path | None = None,
) -> list[float]:
    """Train UNet and text encoder on scaled latents; leaves the EMA weights in the models.

    With ``checkpoints`` (a folder), the loop saves its state there every ``config.checkpoint_every``
    steps and starts from the last one it finds.
    """
    from diffusers import DDPMScheduler

    unet, text_encoder, tokenizer = components["unet"], components["text_encoder"], components["tokenizer"]
    noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
    vocabulary, caption_index, empty = caption_table(captions)
    token_ids = tokenizer(
        vocabulary, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids
    weight = min_snr_weights(noise_scheduler, config.min_snr_gamma)

    def batch_loss(latents: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (len(latents),), generator=generator
        )
        embeds = text_encoder(token_ids[chosen])[0]
        prediction = unet(
            noise_scheduler.add_noise(latents, noise, timesteps), timesteps, encoder_hidden_states=embeds
        ).sample
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        return (weight[timesteps] * per_sample).mean()

    loop = DenoiserLoop(
        config.unet_steps, config.unet_batch, config.unet_lr, config.warmup_steps, config.caption_dropout,
        config.ema_decay, config.checkpoint_every, config.seed,
    )  # fmt: skip
    scale = components["vae"].config.scaling_factor
    return fit_denoiser(
        {"unet": unet, "text": text_encoder}, batch_loss, (means, stds, scale), caption_index, empty, loop,
        log, progress, checkpoints,
    )  # fmt: skip


# Settings that only the denoiser stage (and after it) reads: a rerun that changes only these keeps the
# finished VAE and classifier, and starts the denoiser afresh.
DENOISER_SETTINGS = frozenset(
    {"unet_steps", "unet_batch", "unet_lr", "warmup_steps", "caption_dropout", "ema_decay", "min_snr_gamma",
     "checkpoint_every", "sanity_samples", "threads"}
)  # fmt: skip


def train_toy_model(
    out: str | Path,
    train: ToyTrainConfig | None = None,
    model: ToyModelConfig | None = None,
    classifier: ClassifierConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Train the toy pipeline and its classifier into ``out`` (replaced atomically); returns the summary.

    Resumes from ``OUT.work/`` (finished stages, denoiser checkpoints), which is removed at the end.
    """
    from .sanity import logged_sanity_check

    train, model, classifier = (
        train or ToyTrainConfig(),
        model or ToyModelConfig(),
        classifier or ClassifierConfig(),
    )
    out = Path(out)
    configs = {"train": asdict(train), "model": asdict(model), "classifier": asdict(classifier)}
    stages = Stages(out.with_name(out.name + ".work"), configs, log, restartable=DENOISER_SETTINGS)
    torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    start = time.perf_counter()
    images, captions = render_examples(train.examples, train.seed, progress)
    stages.timings["render"] = time.perf_counter() - start
    log(f"rendered {len(images)} examples in {stages.timings['render']:.0f} s")

    components = build_components(model)
    for part in components.values():
        if isinstance(part, torch.nn.Module):
            part.float()
    components["vae"] = vae = _autoencoder_stages(components["vae"], images, train, stages, log, progress)
    log(f"latent scaling factor {float(vae.config.scaling_factor):.4f}")
    recognizer = _classifier_stage(vae, classifier, stages, log, progress)

    means, stds = encode_examples(vae, images)
    start = time.perf_counter()
    unet_losses = train_denoiser(
        components, means, stds, captions, train, log, progress, checkpoints=stages.folder / "denoiser"
    )
    stages.done("unet", time.perf_counter() - start)
    log(f"UNet and text encoder trained ({stages.timings['unet']:.0f} s in this run)")

    pipe = assemble_pipeline(components)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.requires_grad_(False)
    sanity, stages.timings["sanity"] = logged_sanity_check(
        pipe, recognizer, train.sanity_samples, train.seed, log, progress
    )
    summary = _save_run(out, pipe, (recognizer, classifier), configs, stages, unet_losses, sanity, command)
    shutil.rmtree(stages.folder)
    return summary


def _save_run(
    out: Path, pipe, recognizer: tuple, configs: dict, stages: Stages, unet_losses, sanity, command
) -> dict:
    """Write the pipeline, its classifier (``recognizer``: the model and its config), ``training.json`` (the summary, returned) and ``losses.json``."""
    report = json.loads((stages.folder / "classifier" / "config.json").read_text())["report"]
    vae_losses = json.loads((stages.folder / "vae_losses.json").read_text())
    summary = {
        "command": command,
        "train": configs["train"],
        "model": configs["model"],
        "classifier": {"config": configs["classifier"], "accuracy": report},
        "timings_s": {k: round(v, 1) for k, v in stages.timings.items()},
        "latent_scaling_factor": float(pipe.vae.config.scaling_factor),
        "final_unet_loss": float(np.mean(unet_losses[-100:])),
        "sanity": sanity,
        "torch": torch.__version__,
        "final_vae_loss": float(np.mean(vae_losses[-10:])),
    }
    with atomic_directory(out) as folder:
        pipe.save_pretrained(folder, safe_serialization=True)
        save_classifier(*recognizer, report, folder)
        write_json(folder / "training.json", summary)
        (folder / "losses.json").write_text(json.dumps({"vae": vae_losses, "unet": unet_losses[::10]}))
    return summary


def _autoencoder_stages(vae, images: np.ndarray, train: ToyTrainConfig, stages: Stages, log, progress: bool):
    """The VAE stage (then its latent scaling factor, 1/std of the latents) and the decoder's outline stage,
    or what a killed run finished of them; returns the VAE."""
    from diffusers import AutoencoderKL

    vae_folder, refined_folder = stages.folder / "vae", stages.folder / "vae-refined"
    if (refined_folder / "config.json").is_file():  # both VAE stages finished
        log(f"VAE with its refined decoder loaded from {refined_folder} (finished stages)")
        return AutoencoderKL.from_pretrained(refined_folder).eval()
    if (vae_folder / "config.json").is_file():
        vae = AutoencoderKL.from_pretrained(vae_folder).eval()
        log(f"VAE loaded from {vae_folder} (a finished stage)")
    else:
        start = time.perf_counter()
        vae_losses = train_vae(vae, images, train, log, progress)
        means, _ = encode_examples(vae, images)
        vae.register_to_config(scaling_factor=float(1.0 / means.std()))
        vae.save_pretrained(vae_folder, safe_serialization=True)
        write_json(stages.folder / "vae_losses.json", vae_losses[::10])
        stages.done("vae", time.perf_counter() - start)
        log(f"VAE trained in {stages.timings['vae']:.0f} s")
    if train.decoder_steps > 0:
        start = time.perf_counter()
        train_vae(vae, images, train, log, progress, decoder_only=True)
        vae.save_pretrained(refined_folder, safe_serialization=True)
        stages.done("decoder", time.perf_counter() - start)
        log(f"decoder refined in {stages.timings['decoder']:.0f} s")
    return vae


def _classifier_stage(vae, classifier: ClassifierConfig, stages: Stages, log, progress: bool):
    """The world's recognizer trained through ``vae``, or loaded when a killed run finished it."""
    from .classifier import load_classifier_weights

    if (stages.folder / "classifier" / "model.safetensors").is_file():
        log("classifier loaded (a finished stage)")
        return load_classifier_weights(stages.folder)
    start = time.perf_counter()
    recognizer, report = train_classifier(vae, classifier, log, progress)
    save_classifier(recognizer, classifier, report, stages.folder)
    stages.done("classifier", time.perf_counter() - start)
    log(f"classifier trained in {stages.timings['classifier']:.0f} s: {json.dumps(report)}")
    return recognizer
