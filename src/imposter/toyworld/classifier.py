"""The toy world's recognizer: a small CNN, the toy world's DINO. Three heads over one trunk:

- **class** (10 classes): what kind of subject the image shows. Instances of a class share only shape
  (head, body type, the accessories every instance wears), so this head must read shape: colours say
  nothing about the class in world v3.
- **action** (standing plus the 10 actions).
- **instance**: an embedding (unit vector) that is the same for one instance in any pose and apart for
  two instances of a class (colours, pattern, optional accessories, proportions). Trained contrastively
  (NT-Xent): two renders of one instance in two random poses are a positive pair, every other instance
  in the batch a negative. :func:`instance_scores` turns it into the ``instance`` metric.

It is trained by ``imposter toy train`` on renders of instances from its own seed stream (never the
pretraining's, the pairs' or the distractors'), every class in every pose (held-out combinations
included: it is a measuring instrument, not the generator), with augmentations that make it hold on
generated images: Gaussian blur, pixel noise, a little colour jitter, and round trips through the toy
model's own VAE (with noise on the latents). A share of the class head's training renders are
**chimeras**: an instance of one class with the marks (head shape and accessories) or the body plan of
another, labelled half and half, so that an image with the driving subject's ears or body scores as the
mix it is (the ``leakage`` metric). It is saved next to the pipeline (``classifier/model.safetensors``
and ``classifier/config.json``) and loaded with safetensors only.
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
from .steps import mixed_precision, optimizer_step
from .world import ACTIONS, SUBJECT_NAMES, Subject, instance, sample_pose

LABELS_ACTION: tuple[str, ...] = ("standing", *ACTIONS)
FOLDER = "classifier"


@dataclass(frozen=True)
class ClassifierConfig:
    """Sizes and training recipe of the classifier (what made the shipped one: see its config.json)."""

    channels: tuple[int, ...] = (32, 64, 128, 128)  # 64 -> 32 -> 16 -> 8 -> 4, then global average
    embedding: int = 64  # size of the instance embedding
    steps: int = 2_000
    batch: int = 128  # images per step: ``batch - chimeras_per_batch`` in pairs of views, plus chimeras
    chimeras_per_batch: int = 32
    lr: float = 2e-3
    instances: int = 6_000  # fresh instances, each rendered in two poses (the contrastive pairs)
    chimeras: int = 4_000  # renders that mix two classes' parts (module docstring)
    temperature: float = 0.1  # of the contrastive loss, and of the instance metric's softmax
    vae_fraction: float = 0.5  # share of each batch seen through a VAE round trip
    latent_noise: float = 0.3  # std of the noise added to the (scaled) latents before decoding
    blur_max: float = 1.2  # Gaussian blur sigma, uniform in [0, blur_max] pixels
    noise_max: float = 0.08  # pixel noise std, uniform in [0, noise_max] (pixels in [-1, 1])
    color_jitter: float = 0.05  # per-channel gain in 1 +- this, and the same as an offset
    seed: int = 0
    # the forward pass in "bf16" (what made the shipped one) or "fp32" (steps.mixed_precision)
    precision: str = "bf16"
    eval_instances: int = 40  # per class, fresh (another stream): accuracy and retrieval are reported on them


class ToyClassifier(nn.Module):
    """A plain conv net: four stride-2 stages, global average pooling; class, action and instance heads."""

    def __init__(self, channels: Sequence[int] = ClassifierConfig.channels, embedding: int = 64):
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
        self.instance = nn.Sequential(
            nn.Linear(previous, previous), nn.SiLU(), nn.Linear(previous, embedding)
        )
        self.temperature = ClassifierConfig.temperature  # the instance metric's (set from the config on load)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class and action logits and unit instance embeddings of (N, 3, 64, 64) images in [-1, 1]."""
        features = self.trunk(pixels).mean(dim=(2, 3))
        return self.subject(features), self.action(features), F.normalize(self.instance(features), dim=-1)


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
    """Class and action probabilities, (N, 10) and (N, 11), in the orders of SUBJECT_NAMES and LABELS_ACTION."""
    subjects, actions, _ = outputs(model, images, batch)
    return subjects, actions


@torch.no_grad()
def outputs(
    model: ToyClassifier, images: Sequence[Image.Image], batch: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class and action probabilities and instance embeddings (N, D) of ``images``."""
    outs: list[list[torch.Tensor]] = [[], [], []]
    for start in range(0, len(images), batch):
        subject_logits, action_logits, embeddings = model(to_pixels(images[start : start + batch]))
        for out, value in zip(
            outs, (subject_logits.softmax(-1), action_logits.softmax(-1), embeddings), strict=True
        ):
            out.append(value)
    if not outs[0]:
        return np.zeros((0, len(SUBJECT_NAMES))), np.zeros((0, len(LABELS_ACTION))), np.zeros((0, 1))
    subjects, actions, embeddings = (torch.cat(out).numpy() for out in outs)
    return subjects, actions, embeddings


DISTRACTORS = 31  # other instances of the source's class that the instance metric weighs the source against


@lru_cache(maxsize=4)
def _distractor_embeddings(model: ToyClassifier) -> np.ndarray:
    """(10, DISTRACTORS, D) embeddings of fixed instances of each class (stream "distractors", seed 0), each
    in a random pose (any action, or standing) drawn from its own seed."""
    images = []
    for c, name in enumerate(SUBJECT_NAMES):
        rng = np.random.default_rng([6, c])
        for j in range(DISTRACTORS):
            pose = sample_pose(LABELS_ACTION[int(rng.integers(len(LABELS_ACTION)))], rng)
            images.append(render(instance(name, "distractors", 0, j), pose))
    _, _, embeddings = outputs(model, images)
    return embeddings.reshape(len(SUBJECT_NAMES), DISTRACTORS, -1)


def instance_scores(
    model: ToyClassifier, generated: np.ndarray, sources: np.ndarray, classes: Sequence[int]
) -> np.ndarray:
    """The ``instance`` metric: for each generated image, the probability that it shows its source's
    instance rather than one of DISTRACTORS other instances of the source's class: a softmax over the
    cosines of instance embeddings (``generated`` and ``sources``, (N, D)) at the classifier's training
    temperature. 1 / (DISTRACTORS + 1) = 0.031 is chance (some other instance of the class); 1 the source."""
    distractors = _distractor_embeddings(model)
    scores = []
    for g, s, c in zip(generated, sources, classes, strict=True):
        logits = np.concatenate([[g @ s], distractors[c] @ g]) / model.temperature
        weights = np.exp(logits - logits.max())
        scores.append(float(weights[0] / weights.sum()))
    return np.array(scores)


PARTS = (("head", "accessories"), ("body",))  # marks, body plan: what a chimera takes from another class


def chimera(first: Subject, second: Subject, from_second: Sequence[bool]) -> Subject:
    """``first`` with the parts flagged in ``from_second`` (marks, body plan) taken from ``second``."""
    changes = {
        f: getattr(second, f) for part, take in zip(PARTS, from_second, strict=True) if take for f in part
    }
    return replace(first, **changes)


def render_chimeras(
    count: int, seed: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` chimeras of two classes' instances in every pose, soft class labels (N, 10) and actions."""
    rng = np.random.default_rng([seed, 8])
    images, labels, actions = [], [], []
    for k in tqdm(range(count), desc="rendering chimeras", disable=not progress, leave=False):
        first, second = (int(c) for c in rng.choice(len(SUBJECT_NAMES), size=2, replace=False))
        from_second = [bool(b) for b in rng.permutation([True, False])]
        action = k % len(LABELS_ACTION)
        subject = chimera(
            instance(SUBJECT_NAMES[first], "classifier", seed + 1, 2 * k),
            instance(SUBJECT_NAMES[second], "classifier", seed + 1, 2 * k + 1),
            from_second,
        )
        images.append(np.asarray(render(subject, sample_pose(LABELS_ACTION[action], rng)), dtype=np.uint8))
        label = np.zeros(len(SUBJECT_NAMES), dtype=np.float32)
        label[second] = sum(from_second) / len(PARTS)
        label[first] = 1.0 - label[second]
        labels.append(label)
        actions.append(action)
    return np.stack(images), np.stack(labels), np.array(actions)


def render_views(
    count: int, seed: int, stream: str = "classifier", progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` instances from ``stream`` (class ``k % 10`` for the k-th), each rendered in two random poses:
    images (2, N, 64, 64, 3) uint8, class labels (N,) and action labels (2, N)."""
    rng = np.random.default_rng([seed, 7])
    images, subjects, actions = [], [], []
    for k in tqdm(range(count), desc="rendering for the classifier", disable=not progress, leave=False):
        subject = k % len(SUBJECT_NAMES)
        figure = instance(SUBJECT_NAMES[subject], stream, seed, k)
        labels = [int(a) for a in rng.integers(len(LABELS_ACTION), size=2)]
        images.append(
            [np.asarray(render(figure, sample_pose(LABELS_ACTION[a], rng)), np.uint8) for a in labels]
        )
        subjects.append(subject)
        actions.append(labels)
    return np.stack(images, axis=1), np.array(subjects), np.array(actions).T


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


def contrastive_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over unit embeddings: row i of ``first`` and of ``second`` show one instance, every other row
    of either another."""
    both = torch.cat([first, second])
    n = len(first)
    similarity = (both @ both.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(similarity, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def train_classifier(
    vae,
    config: ClassifierConfig = ClassifierConfig(),
    log: Callable[[str], object] = print,
    progress: bool = True,
) -> tuple[ToyClassifier, dict]:
    """Train the classifier (``vae``: the toy model's, for round-trip augmentation); returns it and its report."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    views, subjects, view_actions = render_views(config.instances, config.seed, progress=progress)
    mixed, mixed_labels, mixed_actions = render_chimeras(max(config.chimeras, 1), config.seed, progress)
    n = len(subjects)
    one_hot = np.eye(len(SUBJECT_NAMES), dtype=np.float32)[np.concatenate([subjects, subjects])]
    soft = np.concatenate([one_hot, mixed_labels])
    actions = np.concatenate([view_actions[0], view_actions[1], mixed_actions])
    pixels = array_pixels(np.concatenate([views[0], views[1], mixed]))
    round_trips = vae_round_trip(vae, pixels, config.latent_noise, generator) if vae is not None else pixels
    subject_labels, action_labels = torch.from_numpy(soft), torch.from_numpy(actions)
    model = ToyClassifier(config.channels, config.embedding)
    model.temperature = config.temperature
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps)
    pairs = min(n, (config.batch - config.chimeras_per_batch) // 2)
    model.train()
    losses = []
    for step in tqdm(range(config.steps), desc="training the classifier", disable=not progress):
        chosen = torch.randperm(n, generator=generator)[:pairs]
        mixes = 2 * n + torch.randint(len(mixed), (config.chimeras_per_batch,), generator=generator)
        index = torch.cat([chosen, chosen + n, mixes])
        through_vae = torch.rand(len(index), generator=generator) < config.vae_fraction
        batch = torch.where(through_vae[:, None, None, None], round_trips[index], pixels[index])
        with mixed_precision(config.precision):
            subject_logits, action_logits, embeddings = (
                output.float() for output in model(augment(batch, config, generator))
            )
        loss = (
            F.cross_entropy(subject_logits, subject_labels[index])
            + F.cross_entropy(action_logits, action_labels[index])
            + contrastive_loss(embeddings[:pairs], embeddings[pairs : 2 * pairs], config.temperature)
        )
        optimizer_step(loss, optimizer, schedule, losses, step, log, "classifier")
    model.eval()
    return model, evaluate_classifier(model, vae, seed=config.seed, count=config.eval_instances)


@torch.no_grad()
def evaluate_classifier(model: ToyClassifier, vae=None, seed: int = 0, count: int = 40) -> dict:
    """On ``count`` fresh instances per class (stream "classifier-eval"), each in two random poses: class and
    action accuracy, and instance retrieval (top-1: the query's other pose among every same-class instance's
    other pose), on plain renders and on VAE round trips of the queries; and the mean ``instance`` score of
    the query against its own other pose (what copying the source scores) and against the next instance of
    its class (what another instance scores)."""
    views, subjects, actions = render_views(
        count * len(SUBJECT_NAMES), seed, "classifier-eval", progress=False
    )
    _, _, gallery = model(array_pixels(views[1]))
    gallery = gallery.numpy()
    queries = {"renders": array_pixels(views[0])}
    if vae is not None:
        generator = torch.Generator().manual_seed(seed)
        queries["vae_round_trips"] = vae_round_trip(vae, queries["renders"], 0.0, generator)
    report: dict = {}
    for name, data in queries.items():
        subject_logits, action_logits, embeddings = model(data)
        embeddings = embeddings.numpy()
        report[f"{name}_subject_accuracy"] = float((subject_logits.argmax(-1).numpy() == subjects).mean())
        report[f"{name}_action_accuracy"] = float((action_logits.argmax(-1).numpy() == actions[0]).mean())
        hits = []
        for c in range(len(SUBJECT_NAMES)):
            members = np.flatnonzero(subjects == c)
            similarity = embeddings[members] @ gallery[members].T
            hits.append(float((similarity.argmax(-1) == np.arange(len(members))).mean()))
        report[f"{name}_instance_retrieval_top1"] = float(np.mean(hits))
        other = np.roll(np.arange(len(subjects)), len(SUBJECT_NAMES))  # the next instance of the same class
        report[f"{name}_instance_score_same"] = float(
            instance_scores(model, embeddings, gallery, subjects).mean()
        )
        report[f"{name}_instance_score_other"] = float(
            instance_scores(model, embeddings, gallery[other], subjects).mean()
        )
    report["instances_per_class"] = count
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
    from .plugin import toy_checkpoint

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
    model = ToyClassifier(meta["config"]["channels"], meta["config"]["embedding"])
    model.load_state_dict(load_file(path / "model.safetensors"))
    model.temperature = meta["config"]["temperature"]
    return model.eval()
