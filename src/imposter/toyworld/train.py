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
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..fileio import atomic_directory, write_json
from .classifier import ClassifierConfig, array_pixels, save_classifier, train_classifier
from .figures import MASK_THRESHOLD
from .model import ToyModelConfig, assemble_pipeline, build_components
from .pairs import sample_training_example
from .steps import optimizer_step
from .world import BACKGROUND


@dataclass(frozen=True)
class ToyTrainConfig:
    """Training recipe; the defaults are what made the shipped checkpoint (see its training.json)."""

    seed: int = 0
    examples: int = 40_000  # pre-rendered (image, caption) pairs, ~0.5 GB as uint8
    vae_steps: int = 2_500  # v1's 1000 left the VAE blurry
    vae_batch: int = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6  # as SD's VAE: the KL only keeps the latents bounded
    figure_weight: float = 5.0  # loss weight of figure pixels relative to background pixels
    vae_l2_weight: float = 1.0  # L2 beside L1: punishes the large errors of blurred edges
    # Then the decoder alone (the encoder frozen, so the latents and all that learns from them stay): the
    # figure's outline. The joint stage leaves a halo of figure colour around it (pose IoU of the ground truth
    # through the VAE 0.941 on the table pairs, mostly extra pixels); a weighted ring of background around
    # the figure sharpens it. Steps, rate and weight chosen on the tune pairs' targets (README, "The model").
    decoder_steps: int = 1_500
    decoder_lr: float = 1e-4
    edge_weight: float = 10.0  # loss weight of the background ring around the figure, in that stage
    edge_width: int = 2  # the ring's width in pixels
    unet_steps: int = 4_000
    unet_batch: int = 64
    unet_lr: float = 5e-4
    warmup_steps: int = 200
    caption_dropout: float = 0.1  # empty caption, for classifier-free guidance
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # Hang et al. 2023: faster convergence of the epsilon loss
    threads: int = 2
    sanity_samples: int = 4  # generations per (subject, action) in the final sanity check
    checkpoint_every: int = 500  # denoiser steps between resumable checkpoints


def _cosine_lr(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _cosine_lr(s, steps, 100))
    losses = []
    vae.train()
    what = "decoder" if decoder_only else "vae"
    for step in tqdm(
        range(steps), desc=f"training {'the decoder' if decoder_only else 'VAE'}", disable=not progress
    ):
        batch = array_pixels(
            images[torch.randint(len(images), (config.vae_batch,), generator=generator).numpy()]
        )
        with torch.set_grad_enabled(not decoder_only):
            posterior = vae.encode(batch).latent_dist
            latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(latents).sample
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
        optimizer, lambda s: _cosine_lr(s + first, loop.steps, loop.warmup_steps)
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


def caption_table(captions: list[str]) -> tuple[list[str], torch.Tensor, int]:
    """The distinct captions plus "" (last), each example's index into them, and the index of ""."""
    vocabulary = sorted(set(captions)) + [""]
    return vocabulary, torch.tensor([vocabulary.index(c) for c in captions]), len(vocabulary) - 1


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
    alphas = noise_scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    weight = torch.clamp(snr, max=config.min_snr_gamma) / snr  # min-SNR for epsilon prediction

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


DECODER_SETTINGS = ("decoder_steps", "decoder_lr", "edge_weight", "edge_width")


class Stages:
    """Finished stages of one training run, kept in ``OUT.work/`` so that a killed run resumes; a rerun whose
    settings differ only in ``restartable`` ones starts the denoiser afresh and keeps the other stages."""

    def __init__(
        self,
        folder: Path,
        settings: dict,
        log: Callable[[str], None],
        restartable: frozenset[str] = DENOISER_SETTINGS,
    ):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        recorded = folder / "settings.json"
        settings = json.loads(json.dumps(settings))
        if recorded.is_file() and (before := json.loads(recorded.read_text())) != settings:
            changed = {k for k in settings["train"] if before.get("train", {}).get(k) != settings["train"][k]}
            same_rest = {k: v for k, v in before.items() if k != "train"} == {
                k: v for k, v in settings.items() if k != "train"
            }
            if not (same_rest and changed <= restartable):
                raise ConfigError(
                    f"{folder} holds a training run with other settings; delete it, or run with the same settings"
                )
            shutil.rmtree(folder / "denoiser", ignore_errors=True)
            log(
                f"denoiser settings changed ({', '.join(sorted(changed))}): keeping the VAE and classifier stages"
            )
        write_json(recorded, settings)
        self.timings_path = folder / "timings.json"
        self.timings = json.loads(self.timings_path.read_text()) if self.timings_path.is_file() else {}

    def done(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        write_json(self.timings_path, self.timings)


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
    from diffusers import AutoencoderKL

    from .classifier import load_classifier_weights
    from .sanity import logged_sanity_check

    train, model, classifier = (
        train or ToyTrainConfig(),
        model or ToyModelConfig(),
        classifier or ClassifierConfig(),
    )
    out = Path(out)
    stages = Stages(
        out.with_name(out.name + ".work"),
        {"train": asdict(train), "model": asdict(model), "classifier": asdict(classifier)},
        log,
    )
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
    vae_folder, refined_folder = stages.folder / "vae", stages.folder / "vae-refined"
    if (refined_folder / "config.json").is_file():  # both VAE stages finished
        components["vae"] = AutoencoderKL.from_pretrained(refined_folder).eval()
        log(f"VAE with its refined decoder loaded from {refined_folder} (finished stages)")
    else:
        if (vae_folder / "config.json").is_file():
            components["vae"] = AutoencoderKL.from_pretrained(vae_folder).eval()
            log(f"VAE loaded from {vae_folder} (a finished stage)")
        else:
            start = time.perf_counter()
            vae_losses = train_vae(components["vae"], images, train, log, progress)
            means, _ = encode_examples(components["vae"], images)
            components["vae"].register_to_config(scaling_factor=float(1.0 / means.std()))
            components["vae"].save_pretrained(vae_folder, safe_serialization=True)
            write_json(stages.folder / "vae_losses.json", vae_losses[::10])
            stages.done("vae", time.perf_counter() - start)
            log(f"VAE trained in {stages.timings['vae']:.0f} s")
        if train.decoder_steps > 0:
            start = time.perf_counter()
            train_vae(components["vae"], images, train, log, progress, decoder_only=True)
            components["vae"].save_pretrained(refined_folder, safe_serialization=True)
            stages.done("decoder", time.perf_counter() - start)
            log(f"decoder refined in {stages.timings['decoder']:.0f} s")
    vae = components["vae"]
    scaling = float(vae.config.scaling_factor)
    log(f"latent scaling factor {scaling:.4f}")

    if (stages.folder / "classifier" / "model.safetensors").is_file():
        recognizer = load_classifier_weights(stages.folder)
        log("classifier loaded (a finished stage)")
    else:
        start = time.perf_counter()
        recognizer, report = train_classifier(vae, classifier, log, progress)
        save_classifier(recognizer, classifier, report, stages.folder)
        stages.done("classifier", time.perf_counter() - start)
        log(f"classifier trained in {stages.timings['classifier']:.0f} s: {json.dumps(report)}")

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
    report = json.loads((stages.folder / "classifier" / "config.json").read_text())["report"]
    summary = {
        "command": command,
        "train": asdict(train),
        "model": asdict(model),
        "classifier": {"config": asdict(classifier), "accuracy": report},
        "timings_s": {k: round(v, 1) for k, v in stages.timings.items()},
        "latent_scaling_factor": scaling,
        "final_unet_loss": float(np.mean(unet_losses[-100:])),
        "sanity": sanity,
        "torch": torch.__version__,
    }
    vae_losses_path = stages.folder / "vae_losses.json"
    vae_losses = json.loads(vae_losses_path.read_text())
    summary["final_vae_loss"] = float(np.mean(vae_losses[-10:]))
    with atomic_directory(out) as folder:
        pipe.save_pretrained(folder, safe_serialization=True)
        save_classifier(recognizer, classifier, report, folder)
        write_json(folder / "training.json", summary)
        (folder / "losses.json").write_text(json.dumps({"vae": vae_losses, "unet": unet_losses[::10]}))
    shutil.rmtree(stages.folder)
    return summary


def retrain_classifier(
    folder: str | Path,
    classifier: ClassifierConfig | None = None,
    sanity_samples: int = 4,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Train the classifier of the toy pipeline in ``folder`` anew (against its VAE), measure the pipeline's
    text-to-image sanity with it, and record both in ``folder/training.json``; returns the accuracy report."""
    from ..models import load_pipeline
    from .sanity import sanity_check

    folder, classifier = Path(folder), classifier or ClassifierConfig()
    pipe = load_pipeline(str(folder), "cpu", log=lambda _: None)
    start = time.perf_counter()
    recognizer, report = train_classifier(pipe.vae, classifier, log, progress)
    seconds = time.perf_counter() - start
    log(f"classifier trained in {seconds:.0f} s: {json.dumps(report)}")
    with atomic_directory(folder / ".classifier.new") as staged:  # staged/classifier, then one rename
        save_classifier(recognizer, classifier, report, staged)
    shutil.rmtree(folder / "classifier", ignore_errors=True)
    (folder / ".classifier.new" / "classifier").replace(folder / "classifier")
    shutil.rmtree(folder / ".classifier.new")
    summary = json.loads((folder / "training.json").read_text())
    summary["classifier"] = {"config": asdict(classifier), "accuracy": report, "command": command}
    summary["timings_s"]["classifier"] = round(seconds, 1)
    if sanity_samples > 0:
        summary["sanity"] = sanity_check(pipe, recognizer, samples=sanity_samples, progress=progress)
        overall = {k: v for k, v in summary["sanity"].items() if k.endswith("_accuracy") and "per_" not in k}
        log(f"sanity: {json.dumps(overall)}")
    write_json(folder / "training.json", summary)
    return report


def refine_decoder(
    folder: str | Path,
    train: ToyTrainConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run the decoder stage of ``train`` on the toy pipeline in ``folder`` (its VAE is replaced; the encoder,
    so the latents, the UNet and the text encoder stay as they are) and record it in ``training.json``.

    It renders the same pretraining examples as ``imposter toy train`` with the same seed, so the result is
    the stage that run would have made. The classifier learnt from round trips through the old decoder:
    retrain it after (``imposter toy classifier --model DIR``). Returns the updated training summary.
    """
    from diffusers import AutoencoderKL

    folder, train = Path(folder), train or ToyTrainConfig()
    summary = json.loads((folder / "training.json").read_text())
    recorded = summary["train"]
    different = [k for k in ("seed", "examples", "vae_batch") if recorded.get(k) != getattr(train, k)]
    if different:
        raise ConfigError(f"{folder} was trained with other {', '.join(different)}; refine it with the same")
    torch.set_num_threads(train.threads)
    images, _ = render_examples(train.examples, train.seed, progress)
    vae = AutoencoderKL.from_pretrained(folder / "vae").float()
    start = time.perf_counter()
    losses = train_vae(vae, images, train, log, progress, decoder_only=True)
    seconds = time.perf_counter() - start
    log(f"decoder refined in {seconds:.0f} s")
    with atomic_directory(folder / "vae") as staged:
        vae.save_pretrained(staged, safe_serialization=True)
    summary["train"].update(
        {k: getattr(train, k) for k in DECODER_SETTINGS}
    )  # the rest made the other stages
    summary["timings_s"]["decoder"] = round(seconds, 1)
    summary["decoder_command"] = command
    summary["final_decoder_loss"] = float(np.mean(losses[-100:]))
    write_json(folder / "training.json", summary)
    return summary
