"""The toy world's body-keypoint detector (our OpenPose): ``--detect-pose toy`` on the toy world's pictures.

A small encoder-decoder CNN (170k parameters): 64x64 RGB in, one heatmap per joint at full resolution,
read out by a spatial soft-argmax as (x, y) in pixels, L1 loss on the coordinates. It learns from
pretraining figures only (the "pretraining" instance stream: random instances of every class standing or
doing a seen action, never an evaluation instance), each rendered with its exact joints
(``render.body_keypoints``). ``imposter toy keypoints --model DIR`` trains it into ``DIR/keypoints/``
(safetensors, resumable, seeded); the bundled toy model ships one, an add-on beside the pipeline like the
pose ControlNet. What it is for: the toy world's picture of the real one's detectors (RTMPose for people,
ViTPose for animals), so that imposter runs on toy pairs with no keypoint files at all. Toy-only:
it knows this world's figures and nothing else.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from ..fileio import atomic_directory, write_json
from ..retarget import JOINTS
from .pairs import make_pairs, training_figure
from .render import body_keypoints, render
from .steps import mixed_precision

KEYPOINTS_FOLDER = "keypoints"
SIZE = 64  # the toy world's pictures


@dataclass(frozen=True)
class ToyKeypointConfig:
    """The detector's recipe; the defaults made the shipped one (its training.json). Chosen once, not tuned
    on pairs: 2,500 steps of 32 figures reach 0.36 px of mean joint error on the tune pairs' images
    (benchmarks/toy_keypoint_detector.py, which it came from)."""

    seed: int = 0
    steps: int = 2_500
    batch: int = 32
    lr: float = 2e-3  # one-cycle peak
    weight_decay: float = 1e-4
    width: int = 16  # channels of the first level (x2, x4, x4 below)
    # the forward pass in "bf16" (what made the shipped one) or "fp32" (steps.mixed_precision)
    precision: str = "bf16"
    checkpoint_every: int = 500


def _block(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride, 1), nn.GroupNorm(8, channels_out), nn.SiLU()
    )


class ToyKeypointDetector(nn.Module):
    """64x64 RGB in [-1, 1] -> one heatmap per joint (64x64) -> (x, y) per joint by spatial soft-argmax."""

    def __init__(self, joints: int = len(JOINTS), width: int = 16) -> None:
        super().__init__()
        self.down = nn.ModuleList(
            [
                _block(3, width),
                _block(width, 2 * width, 2),
                _block(2 * width, 4 * width, 2),
                _block(4 * width, 4 * width, 2),
            ]
        )
        self.up = nn.ModuleList(
            [_block(8 * width, 4 * width), _block(6 * width, 2 * width), _block(3 * width, width)]
        )
        self.head = nn.Conv2d(width, joints, 1)
        self.register_buffer("grid", torch.arange(SIZE, dtype=torch.float32) + 0.5, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        skips, x = [], images
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            x = layer(torch.cat([x, skip], dim=1))
        logits = self.head(x).flatten(2)  # (B, J, H*W)
        weights = logits.softmax(-1).view(*logits.shape[:2], SIZE, SIZE)
        xs = (weights.sum(2) * self.grid).sum(-1)
        ys = (weights.sum(3) * self.grid).sum(-1)
        return torch.stack([xs, ys], dim=-1)  # (B, J, 2) in pixels


def to_tensor(images) -> torch.Tensor:
    """64 px RGB pictures as a batch in [-1, 1]."""
    array = np.stack([np.asarray(image, dtype=np.float32) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1


def training_batch(rng: np.random.Generator, seed: int, start: int, size: int):
    """``size`` pretraining figures from index ``start`` and their exact joints, (B, 3, 64, 64), (B, J, 2)."""
    images, targets = [], []
    for index in range(start, start + size):
        subject, pose, _ = training_figure(rng, seed, index)
        images.append(render(subject, pose))
        points = body_keypoints(subject, pose)
        targets.append([points[name] for name in JOINTS])
    return to_tensor(images), torch.tensor(targets, dtype=torch.float32)


def _save_state(folder: Path, step: int, model, optimizer, rng, losses: list[float]) -> None:
    """What the loop needs to go on from ``step``: weights and AdamW's moments (safetensors), the losses so
    far and the figure stream's generator state (JSON)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for i, param in enumerate(model.parameters()):
        tensors |= {f"adam.{i}.{k}": torch.as_tensor(v) for k, v in optimizer.state.get(param, {}).items()}
    with atomic_directory(folder) as temporary:
        save_file(tensors, temporary / "state.safetensors")
        write_json(
            temporary / "progress.json", {"step": step, "losses": losses, "rng": rng.bit_generator.state}
        )


def _load_state(folder: Path, model, optimizer, rng) -> tuple[int, list[float]]:
    from safetensors.torch import load_file

    tensors = load_file(folder / "state.safetensors")
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    for i, param in enumerate(model.parameters()):
        state = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"adam.{i}.")}
        if state:
            optimizer.state[param] = state
    progress = json.loads((folder / "progress.json").read_text())
    rng.bit_generator.state = progress["rng"]
    return int(progress["step"]), list(progress["losses"])


def fit_keypoint_detector(
    config: ToyKeypointConfig,
    log: Callable[[str], object] = print,
    progress: bool = True,
    checkpoints: Path | None = None,
) -> tuple[ToyKeypointDetector, list[float]]:
    """Train a detector on pretraining figures (AdamW, one-cycle lr, L1 on the joints' pixels); returns it
    (in eval mode) and the loss of every step. With ``checkpoints`` (a folder), saves its state there every
    ``config.checkpoint_every`` steps and starts from the last one it finds."""
    torch.manual_seed(config.seed)
    model = ToyKeypointDetector(width=config.width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.lr, total_steps=max(config.steps, 1), pct_start=0.05
    )
    rng, done, losses = np.random.default_rng([config.seed, 0]), 0, []
    if checkpoints is not None and (checkpoints / "progress.json").is_file():
        done, losses = _load_state(checkpoints, model, optimizer, rng)
        with warnings.catch_warnings():  # the schedule fast-forwarded to ``done`` with no optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(done):
                schedule.step()
        log(f"resuming the keypoint detector at step {done} from {checkpoints}")
    model.train()
    for step in tqdm(range(done, config.steps), desc="keypoint detector", disable=not progress):
        images, targets = training_batch(rng, config.seed, step * config.batch, config.batch)
        with mixed_precision(config.precision):
            found = model(images).float()
        loss = (found - targets).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if checkpoints is not None and (
            (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps
        ):
            _save_state(checkpoints, step + 1, model, optimizer, rng, losses)
    return model.eval(), losses


def train_keypoint_detector(
    model_dir: str | Path,
    config: ToyKeypointConfig = ToyKeypointConfig(),
    log: Callable[[str], object] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Train the detector into ``MODEL_DIR/keypoints/`` (replaced atomically), resuming from
    ``MODEL_DIR/keypoints.work/``; returns its record (also its ``training.json``)."""
    from safetensors.torch import save_file

    folder = Path(model_dir) / KEYPOINTS_FOLDER
    work = folder.with_name(f"{KEYPOINTS_FOLDER}.work")
    start = time.perf_counter()
    model, losses = fit_keypoint_detector(config, log, progress, checkpoints=work)
    seconds = round(time.perf_counter() - start, 1)  # of this process: a resumed run's last part
    record = {
        "config": asdict(config),
        "final_loss": losses[-1] if losses else None,
        "seconds": seconds,
        "command": command,
        "torch": torch.__version__,
        "joint_error_px": joint_error(model, make_pairs(8, 0, "tune")),
    }
    with atomic_directory(folder) as temporary:
        save_file(model.state_dict(), temporary / "detector.safetensors")
        write_json(temporary / "training.json", record)
    shutil.rmtree(work, ignore_errors=True)
    log(f"keypoint detector saved to {folder} ({seconds:.0f} s); on 8 tune pairs: {record['joint_error_px']}")
    pipeline_record = Path(model_dir) / "training.json"
    if pipeline_record.is_file():  # beside a trained toy pipeline: its record holds every stage
        summary = json.loads(pipeline_record.read_text())
        summary["keypoints"] = record
        write_json(pipeline_record, summary)
    return record


@torch.no_grad()
def joint_error(model: ToyKeypointDetector, pairs) -> dict[str, float]:
    """The detector's error (px) on both images of ``pairs`` (toy pairs): mean, median, 90th percentile."""
    errors = []
    for pair in pairs:
        for image, truth in (
            (pair.source_image, pair.source_keypoints),
            (pair.driving_image, pair.driving_keypoints),
        ):
            found = model(to_tensor([image]))[0].numpy()
            errors += [
                float(np.hypot(*(xy - np.asarray(truth[name]))))
                for name, xy in zip(JOINTS, found, strict=True)
            ]
    return {
        "mean": round(float(np.mean(errors)), 3),
        "median": round(float(np.median(errors)), 3),
        "p90": round(float(np.percentile(errors, 90)), 3),
    }


@functools.cache
def load_keypoint_detector(folder: Path) -> ToyKeypointDetector:
    """The detector in ``folder`` (a ``keypoints/`` of a toy checkpoint), safetensors only, once per process."""
    from safetensors.torch import load_file

    from ..errors import ModelLoadError

    weights = folder / "detector.safetensors"
    if not weights.is_file():
        raise ModelLoadError(
            f"no toy keypoint detector at {folder}; train one: imposter toy keypoints --model {folder.parent}"
        )
    config = (
        json.loads((folder / "training.json").read_text())["config"]
        if (folder / "training.json").is_file()
        else {}
    )
    model = ToyKeypointDetector(width=config.get("width", ToyKeypointConfig.width))
    model.load_state_dict(load_file(weights))
    return model.eval()


@torch.no_grad()
def detect_toy_keypoints(image: Image.Image, folder: Path | None = None) -> dict[str, np.ndarray]:
    """The figure's joints in ``image`` (any size: read at 64 px, mapped back), by the bundled detector or the
    one in ``folder``."""
    from .plugin import toy_checkpoint

    model = load_keypoint_detector(Path(folder or toy_checkpoint() / KEYPOINTS_FOLDER))
    picture = image.convert("RGB")
    scale = np.array([picture.width / SIZE, picture.height / SIZE])
    if picture.size != (SIZE, SIZE):
        picture = picture.resize((SIZE, SIZE), Image.BICUBIC)
    found = model(to_tensor([picture]))[0].numpy().astype(np.float64)
    return {name: xy * scale for name, xy in zip(JOINTS, found, strict=True)}
