"""How good must the keypoints be? imposter and its warp with every keypoint jittered (issue 19).

The toy world's pairs carry the renders' own joints: a perfect OpenPose. A real detector errs, so this
rewrites each pair's keypoint files with Gaussian jitter of ``sigma`` pixels per joint and axis (seeded per
pair and sigma, the same for every row) and runs the bench on them:

    python benchmarks/toy_keypoint_noise.py --pairs 24 --seeds 0 1 --sigmas 0 0.5 1 2

(the table split by default, as the README's table; about 2 min per sigma on one core: nothing is
fine-tuned). Each sigma gets its own bench under runs/toy-keypoint-noise/sigma<s>/ (resumable); the summary
(mean over pairs +- 95% interval) is printed and written to runs/toy-keypoint-noise/summary.md. On a 64 px
toy image the figure is about 33 px tall and a limb 5 px long: sigma 1 px is 3% of the figure's height.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from imposter.bench.pairs import OPTIONAL_IMAGES
from imposter.bench.stats import mean_interval
from imposter.cli import main as imposter
from imposter.fileio import write_text
from imposter.retarget import read_keypoints, to_openpose
from imposter.toyworld.pairs import write_pairs

OUT = Path("runs/toy-keypoint-noise")
METHODS = ("imposter", "retarget-warp")
KEYS = ("pose_iou", "subject", "instance", "leakage")


def jitter_pairs(pairs_csv: Path, sigma: float, out: Path) -> Path:
    """A copy of the pairs CSV whose keypoint files are the originals plus N(0, sigma) pixels per coordinate."""
    with open(pairs_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for number, row in enumerate(rows):
        rng = np.random.default_rng([number, round(sigma * 1000)])
        for column in ("source_keypoints", "driving_keypoints"):
            points = read_keypoints(pairs_csv.parent / row[column])
            moved = {name: xy + rng.normal(0.0, sigma, 2) for name, xy in points.items() if name != "pelvis"}
            target = out / column / Path(row[column]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_text(target, json.dumps(to_openpose(moved)) + "\n")
            row[column] = str(target.resolve())
        for column in ("source_image", "driving_image", *OPTIONAL_IMAGES):  # read from the new folder
            row[column] = str((pairs_csv.parent / row[column]).resolve())
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out / "pairs.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--pair-seed", type=int, default=0)
    parser.add_argument("--split", default="table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    clean = write_pairs(args.pairs, args.pair_seed, OUT / "pairs", args.split)
    lines = [
        f"{args.pairs} {args.split} pairs x {len(args.seeds)} seeds; keypoints jittered by sigma px; mean over "
        "pairs +- 95% interval\n",
        "| sigma (px) | method | " + " | ".join(KEYS) + " |",
        "|---|---|" + "---:|" * len(KEYS),
    ]
    for sigma in args.sigmas:
        folder = OUT / f"sigma{sigma:g}"
        folder.mkdir(parents=True, exist_ok=True)
        pairs = jitter_pairs(clean, sigma, folder) if sigma else clean
        argv = ["bench", "--pairs", str(pairs), "--model", "toy", "--methods", *METHODS, "--metrics", "toy"]
        argv += ["--seeds", *map(str, args.seeds), "--out", str(folder / "bench"), "--quiet"]
        if imposter(argv) != 0:
            raise SystemExit(f"the bench for sigma {sigma:g} failed")
        with open(folder / "bench" / "per_pair.csv", newline="", encoding="utf-8") as handle:
            per_pair = list(csv.DictReader(handle))
        for method in METHODS:
            cells = []
            for key in KEYS:
                mean, half = mean_interval([float(r[key]) for r in per_pair if r["method"] == method], 0.95)
                cells.append(f"{mean:.3f} ± {half:.3f}")
            lines.append(f"| {sigma:g} | {method} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    write_text(OUT / "summary.md", text)
    print(text)


if __name__ == "__main__":
    main()
