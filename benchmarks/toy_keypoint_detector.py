"""imposter-retarget with *detected* keypoints: a small learned keypoint detector for the toy world (a toy
OpenPose), its joint error, and the table with its keypoints instead of the renders' own (issue 19).

The README's table gives imposter-retarget the renders' exact joints, and a jitter sweep says how fast it
falls with Gaussian error (benchmarks/toy_keypoint_noise.py). A detector errs otherwise: rarely, and then
by a limb. This trains one, seeded, on pretraining figures (the "pretraining" instance stream, never an
evaluation instance): a small encoder-decoder CNN, one heatmap per joint at full resolution, read out by a
spatial soft-argmax, L1 loss on the coordinates. Toy-only and not shipped: on real images the detector is
OpenPose (``--detect-pose openpose``).

    OMP_NUM_THREADS=1 python benchmarks/toy_keypoint_detector.py --steps 2500   # ~17 min on one core

prints the mean joint error on the tune and table pairs' images, writes the table pairs with detected
keypoint files under runs/toy-keypoint-detector/pairs/ and runs the bench (imposter-retarget, retarget-warp;
24 pairs x 2 seeds) into runs/toy-keypoint-detector/bench-STEPS/. The detector's weights stay in
runs/toy-keypoint-detector/detector.safetensors (resumes from it).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from imposter.cli import main as imposter
from imposter.fileio import write_text
from imposter.retarget import JOINTS, to_openpose
from imposter.toyworld.pairs import make_pairs, training_figure, write_pairs
from imposter.toyworld.render import body_keypoints, render

OUT = Path("runs/toy-keypoint-detector")
SIZE = 64


def block(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride, 1), nn.GroupNorm(8, channels_out), nn.SiLU()
    )


class Detector(nn.Module):
    """64x64 RGB -> one heatmap per joint (64x64) -> (x, y) per joint by spatial soft-argmax."""

    def __init__(self, joints: int = len(JOINTS), width: int = 16) -> None:
        super().__init__()
        self.down = nn.ModuleList(
            [
                block(3, width),
                block(width, 2 * width, 2),
                block(2 * width, 4 * width, 2),
                block(4 * width, 4 * width, 2),
            ]
        )
        self.up = nn.ModuleList(
            [block(8 * width, 4 * width), block(6 * width, 2 * width), block(3 * width, width)]
        )
        self.head = nn.Conv2d(width, joints, 1)
        grid = torch.arange(SIZE, dtype=torch.float32) + 0.5
        self.register_buffer("grid", grid, persistent=False)

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
    return (
        torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) for image in images])).permute(
            0, 3, 1, 2
        )
        / 127.5
        - 1
    )


def training_batch(
    rng: np.random.Generator, seed: int, start: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    images, targets = [], []
    for index in range(start, start + size):
        subject, pose, _ = training_figure(rng, seed, index)
        images.append(render(subject, pose))
        points = body_keypoints(subject, pose)
        targets.append([points[name] for name in JOINTS])
    return to_tensor(images), torch.tensor(targets, dtype=torch.float32)


def train(steps: int, batch: int, seed: int) -> Detector:
    torch.manual_seed(seed)
    model = Detector()
    weights = OUT / "detector.safetensors"
    state = OUT / "detector.json"
    done = 0
    if weights.exists() and state.exists():
        model.load_state_dict(load_file(weights))
        done = json.loads(state.read_text())["steps"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=max(steps, 1), pct_start=0.05)
    for _ in range(done):
        schedule.step()
    rng = np.random.default_rng([seed, done])
    model.train()
    for step in tqdm(range(done, steps), desc="detector", initial=done, total=steps):
        images, targets = training_batch(rng, seed, step * batch, batch)
        loss = (model(images) - targets).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 500 == 0 or step + 1 == steps:
            OUT.mkdir(parents=True, exist_ok=True)
            save_file(model.state_dict(), weights)
            write_text(state, json.dumps({"steps": step + 1, "loss": loss.item()}))
    return model.eval()


@torch.no_grad()
def detect(model: Detector, images) -> list[dict[str, tuple[float, float]]]:
    found = model(to_tensor(images))
    return [
        {name: tuple(float(v) for v in xy) for name, xy in zip(JOINTS, points, strict=True)}
        for points in found
    ]


def joint_error(model: Detector, split: str, pairs: int) -> float:
    errors = []
    for pair in make_pairs(pairs, 0, split):
        for image, truth in (
            (pair.source_image, pair.source_keypoints),
            (pair.driving_image, pair.driving_keypoints),
        ):
            found = detect(model, [image])[0]
            errors += [float(np.hypot(*(np.subtract(found[name], truth[name])))) for name in JOINTS]
    return float(np.mean(errors)), float(np.median(errors)), float(np.percentile(errors, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    model = train(args.steps, args.batch, args.seed)
    lines = [f"detector: {args.steps} steps x {args.batch} pretraining figures (seed {args.seed})\n"]
    for split, count in (("tune", 8), ("table", args.pairs)):
        mean, median, p90 = joint_error(model, split, count)
        lines.append(
            f"joint error on the {split} pairs' images (px): mean {mean:.2f}, median {median:.2f}, 90th percentile {p90:.2f}"
        )
    csv_path = write_pairs(args.pairs, 0, OUT / "pairs", "table")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pairs = {pair.pair_id: pair for pair in make_pairs(args.pairs, 0, "table")}
    for row in rows:  # the detector's keypoints replace the renders' own
        pair = pairs[row["pair_id"]]
        for role in ("source", "driving"):
            found = detect(model, [getattr(pair, f"{role}_image")])[0]
            write_text(csv_path.parent / row[f"{role}_keypoints"], json.dumps(to_openpose(found)) + "\n")
    argv = [
        "bench",
        "--pairs",
        str(csv_path),
        "--model",
        "toy",
        "--methods",
        "imposter-retarget",
        "retarget-warp",
    ]
    bench = OUT / f"bench-{args.steps}"  # a detector trained further gets a bench of its own
    argv += ["--metrics", "toy", "--seeds", *map(str, args.seeds), "--out", str(bench), "--quiet"]
    if imposter(argv) != 0:
        raise SystemExit("the bench failed")
    text = "\n".join(lines) + "\n\n" + (bench / "report.md").read_text()
    write_text(OUT / "summary.md", text)
    print(text)


if __name__ == "__main__":
    main()
