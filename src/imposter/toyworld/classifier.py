"""The toy world's subject and action classifier: a small CNN, the toy world's DINO.

Colour statistics cannot see shape: a render in the source's colours with another subject's head,
pattern and accessories scores as the source. This network sees heads, patterns, accessories and
proportions. It has two heads over one trunk: the subject (10 classes) and the action (standing plus
the 10 actions). It is trained by ``imposter toy train`` on renders of every subject in every pose
(held-out combinations included: it is a measuring instrument, not the generator), with augmentations
that make it hold on generated images: Gaussian blur, pixel noise, a little colour jitter, and round
trips through the toy model's own VAE (with noise on the latents). It is saved next to the pipeline
(``classifier/model.safetensors`` and ``classifier/config.json``) and loaded with safetensors only.

Colour alone would identify every subject (their palettes differ), and a network takes that shortcut:
trained on plain renders, it called the robot's colours on the bird's body "red robot" at 0.75. So a
share of the training renders are **chimeras**: a subject's three parts, its colours, its marks (head
shape, pattern, accessories) and its body plan, each drawn from one of two subjects, labelled with the
share of parts each contributed (1/3 or 2/3). The network must weigh shape as much as colour, and an
image with the source's colours but the driving subject's ears and body scores as the chimera it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ..errors import ModelLoadError
from ..images import to_tensor
from .render import render
from .steps import optimizer_step
from .world import ACTIONS, SUBJECT_NAMES, SUBJECTS, Subject, sample_pose

LABELS_ACTION: tuple[str, ...] = ("standing", *ACTIONS)
FOLDER = "classifier"


@dataclass(frozen=True)
class ClassifierConfig:
    """Sizes and training recipe of the classifier (what made the shipped one: see its config.json)."""

    channels: tuple[int, ...] = (32, 64, 128, 128)  # 64 -> 32 -> 16 -> 8 -> 4, then global average
    steps: int = 1_500
    batch: int = 128
    lr: float = 2e-3
    renders: int = 12_000  # fresh renders of every (subject, action), standing included
    vae_fraction: float = 0.5  # share of each batch seen through a VAE round trip
    latent_noise: float = 0.3  # std of the noise added to the (scaled) latents before decoding
    blur_max: float = 1.2  # Gaussian blur sigma, uniform in [0, blur_max] pixels
    noise_max: float = 0.08  # pixel noise std, uniform in [0, noise_max] (pixels in [-1, 1])
    color_jitter: float = 0.08  # per-channel gain in 1 +- this, and the same as an offset
    seed: int = 0
    eval_renders: int = 1_100  # fresh renders (another seed) its accuracy is reported on
    chimera_fraction: float = (
        0.5  # chimeras added, as a share of the plain renders that mix two subjects' parts (see above)
    )


class ToyClassifier(nn.Module):
    """A plain conv net: four stride-2 stages, global average pooling, two linear heads."""

    def __init__(self, channels: Sequence[int] = ClassifierConfig.channels):
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
            ]
            previous = width
        self.trunk = nn.Sequential(*layers)
        self.subject = nn.Linear(previous, len(SUBJECT_NAMES))
        self.action = nn.Linear(previous, len(LABELS_ACTION))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Subject and action logits of (N, 3, 64, 64) images in [-1, 1]."""
        features = self.trunk(pixels).mean(dim=(2, 3))
        return self.subject(features), self.action(features)


def to_pixels(images: Sequence[Image.Image]) -> torch.Tensor:
    """(N, 3, 64, 64) float tensor in [-1, 1] of RGB images (resized to 64x64 if they are not)."""
    return to_tensor([_at_64(image) for image in images])


def array_pixels(images: np.ndarray) -> torch.Tensor:
    """(N, 3, H, W) float tensor in [-1, 1] of uint8 (N, H, W, 3) renders (the trainers' arrays)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _at_64(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    return image if image.size == (64, 64) else image.resize((64, 64), Image.BILINEAR)


@torch.no_grad()
def predict(
    model: ToyClassifier, images: Sequence[Image.Image], batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Subject and action probabilities, (N, 10) and (N, 11), in the orders of SUBJECT_NAMES and LABELS_ACTION."""
    subjects, actions = [], []
    for start in range(0, len(images), batch):
        subject_logits, action_logits = model(to_pixels(images[start : start + batch]))
        subjects.append(subject_logits.softmax(-1))
        actions.append(action_logits.softmax(-1))
    if not subjects:
        return np.zeros((0, len(SUBJECT_NAMES))), np.zeros((0, len(LABELS_ACTION)))
    return torch.cat(subjects).numpy(), torch.cat(actions).numpy()


PARTS = (("main", "accent"), ("head", "pattern", "accessories"), ("body",))  # colours, marks, body plan


def chimera(first: Subject, second: Subject, from_second: Sequence[bool]) -> Subject:
    """``first`` with the parts flagged in ``from_second`` (colours, marks, body plan) taken from ``second``."""
    changes = {
        f: getattr(second, f) for part, take in zip(PARTS, from_second, strict=True) if take for f in part
    }
    return replace(first, **changes)


def render_chimeras(
    count: int, seed: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` chimeras of two subjects in every pose, with soft subject labels (N, 10) and actions."""
    rng = np.random.default_rng([seed, 8])
    images, labels, actions = [], [], []
    for k in tqdm(range(count), desc="rendering chimeras", disable=not progress, leave=False):
        first, second = rng.choice(len(SUBJECTS), size=2, replace=False)
        from_second = [bool(b) for b in rng.permutation([True, False, bool(rng.integers(2))])]
        action = k % len(LABELS_ACTION)
        subject = chimera(SUBJECTS[first], SUBJECTS[second], from_second)
        images.append(np.asarray(render(subject, sample_pose(LABELS_ACTION[action], rng)), dtype=np.uint8))
        label = np.zeros(len(SUBJECTS), dtype=np.float32)
        label[second] = sum(from_second) / len(PARTS)
        label[first] = 1.0 - label[second]
        labels.append(label)
        actions.append(action)
    return np.stack(images), np.stack(labels), np.array(actions)


def render_labelled(
    count: int, seed: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` renders (uint8, N x 64 x 64 x 3) of every subject doing every action in turn, with labels."""
    rng = np.random.default_rng([seed, 7])
    images, subjects, actions = [], [], []
    for k in tqdm(range(count), desc="rendering for the classifier", disable=not progress, leave=False):
        subject = k % len(SUBJECTS)
        action = (k // len(SUBJECTS)) % len(LABELS_ACTION)
        pose = sample_pose(LABELS_ACTION[action], rng)
        images.append(np.asarray(render(SUBJECTS[subject], pose), dtype=np.uint8))
        subjects.append(subject)
        actions.append(action)
    return np.stack(images), np.array(subjects), np.array(actions)


def _gaussian_blur(pixels: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own sigma (0: unchanged), a separable 5-tap kernel."""
    taps = torch.arange(-2, 3, dtype=pixels.dtype)
    kernels = torch.exp(-(taps[None] ** 2) / (2 * sigmas[:, None].clamp(min=1e-3) ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    n, c, h, w = pixels.shape
    flat = pixels.reshape(1, n * c, h, w)
    weight = kernels.repeat_interleave(c, dim=0)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), weight[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), weight[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def augment(pixels: torch.Tensor, config: ClassifierConfig, generator: torch.Generator) -> torch.Tensor:
    """Blur, colour jitter and pixel noise, each drawn per image."""
    n = len(pixels)
    sigmas = torch.rand(n, generator=generator) * config.blur_max
    out = _gaussian_blur(pixels, sigmas)
    gain = 1 + (torch.rand(n, 3, 1, 1, generator=generator) * 2 - 1) * config.color_jitter
    offset = (torch.rand(n, 3, 1, 1, generator=generator) * 2 - 1) * config.color_jitter
    out = out * gain + offset
    noise = torch.rand(n, 1, 1, 1, generator=generator) * config.noise_max
    out = out + noise * torch.randn(out.shape, generator=generator)
    return out.clamp(-1, 1)


@torch.no_grad()
def vae_round_trip(
    vae, pixels: torch.Tensor, latent_noise: float, generator: torch.Generator
) -> torch.Tensor:
    """Encode and decode through ``vae``, with noise of ``latent_noise`` std (in scaled units) on the latents."""
    scale = vae.config.scaling_factor
    outs = []
    for chunk in pixels.split(256):
        latents = vae.encode(chunk).latent_dist.mean
        latents = latents + latent_noise / scale * torch.randn(latents.shape, generator=generator)
        outs.append(vae.decode(latents).sample.clamp(-1, 1))
    return torch.cat(outs)


def train_classifier(
    vae,
    config: ClassifierConfig = ClassifierConfig(),
    log: Callable[[str], object] = print,
    progress: bool = True,
) -> tuple[ToyClassifier, dict]:
    """Train the classifier (``vae``: the toy model's, for round-trip augmentation); returns it and its report."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    images, subjects, actions = render_labelled(config.renders, config.seed, progress)
    soft = np.eye(len(SUBJECTS), dtype=np.float32)[subjects]
    chimeras = round(config.renders * config.chimera_fraction)
    if chimeras:
        mixed, mixed_labels, mixed_actions = render_chimeras(chimeras, config.seed, progress)
        images, soft = np.concatenate([images, mixed]), np.concatenate([soft, mixed_labels])
        actions = np.concatenate([actions, mixed_actions])
    pixels = array_pixels(images)
    round_trips = vae_round_trip(vae, pixels, config.latent_noise, generator) if vae is not None else pixels
    subject_labels, action_labels = torch.from_numpy(soft), torch.from_numpy(actions)
    model = ToyClassifier(config.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps)
    model.train()
    losses = []
    for step in tqdm(range(config.steps), desc="training the classifier", disable=not progress):
        index = torch.randint(len(pixels), (config.batch,), generator=generator)
        through_vae = torch.rand(config.batch, generator=generator) < config.vae_fraction
        batch = torch.where(through_vae[:, None, None, None], round_trips[index], pixels[index])
        subject_logits, action_logits = model(augment(batch, config, generator))
        loss = F.cross_entropy(subject_logits, subject_labels[index]) + F.cross_entropy(
            action_logits, action_labels[index]
        )
        optimizer_step(loss, optimizer, schedule, losses, step, log, "classifier")
    model.eval()
    return model, evaluate_classifier(model, vae, seed=config.seed + 1, count=config.eval_renders)


@torch.no_grad()
def evaluate_classifier(model: ToyClassifier, vae=None, seed: int = 1, count: int = 1_100) -> dict:
    """Accuracy on fresh renders (another seed than training) and on their VAE round trips."""
    images, subjects, actions = render_labelled(count, seed, progress=False)
    pixels = array_pixels(images)
    report = {}
    sets = {"renders": pixels}
    if vae is not None:
        sets["vae_round_trips"] = vae_round_trip(vae, pixels, 0.0, torch.Generator().manual_seed(seed))
    for name, data in sets.items():
        subject_logits, action_logits = model(data)
        report[f"{name}_subject_accuracy"] = float((subject_logits.argmax(-1).numpy() == subjects).mean())
        report[f"{name}_action_accuracy"] = float((action_logits.argmax(-1).numpy() == actions).mean())
    report["samples"] = count
    return report


def save_classifier(model: ToyClassifier, config: ClassifierConfig, report: dict, folder: str | Path) -> None:
    """Write ``folder/classifier/model.safetensors`` and its config.json (sizes, recipe, accuracy)."""
    from safetensors.torch import save_file

    out = Path(folder) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    meta = {"config": asdict(config), "report": report, "subjects": SUBJECT_NAMES, "actions": LABELS_ACTION}
    (out / "config.json").write_text(json.dumps(meta, indent=2))


@lru_cache(maxsize=4)
def load_classifier(folder: str | Path | None = None) -> ToyClassifier:
    """The classifier saved with a toy pipeline (default: the bundled one), loaded once per folder."""
    from ..models import toy_checkpoint

    return load_classifier_weights(Path(folder) if folder is not None else toy_checkpoint())


def load_classifier_weights(base: Path) -> ToyClassifier:
    """The classifier in ``base/classifier/`` (safetensors only), checked against the world's cast."""
    from safetensors.torch import load_file

    path = Path(base) / FOLDER
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(
            f"no toy classifier in {path}; train one with `imposter toy train --out DIR` (it saves DIR/{FOLDER})"
        )
    meta = json.loads((path / "config.json").read_text())
    if tuple(meta["subjects"]) != SUBJECT_NAMES or tuple(meta["actions"]) != LABELS_ACTION:
        raise ModelLoadError(f"the toy classifier in {path} was trained on another cast; retrain it")
    model = ToyClassifier(meta["config"]["channels"])
    model.load_state_dict(load_file(path / "model.safetensors"))
    return model.eval()
