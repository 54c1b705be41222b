"""A negative result kept runnable (issue 19): ImPoster's image as the layout, then imposter-sdedit's img2img of
it with the source LoRA (no amplitude guidance), against img2img of the driving image itself.

On the tune split it reuses the sweeps' LoRAs: the paper's (both pairs, rank 4 on attention) and the source's
(rank 16, wide), both 500 steps, made by

    python benchmarks/toyworld.py sweep --pairs 8 --seeds 0 1 --threads 1 --k 0 --out runs/v31-budget/imposter/ft500
    python benchmarks/toyworld.py sweep --method imposter-subject --rank 16 --lora-layers wide --pairs 8 \
        --seeds 0 1 --threads 1 --k 0 --out runs/v5-drive

then ``python benchmarks/toy_two_stage.py 0.4 0.6 0.8`` (strengths of the second stage; about 6 min on one
core; ``--amp-scale 0.03``: with imposter-sdedit's amplitude guidance). Writes one JSON line per pair and row
to runs/v5-twostage/rows[-amp<s_a>].jsonl and prints the means.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from imposter import ImPoster, SamplingConfig
from imposter.metrics.base import EvalItem
from imposter.toyworld.metric import ToyGroundTruth
from imposter.toyworld.pairs import make_pairs

BOTH = Path("runs/v31-budget/imposter/ft500/adapters")
SOURCE = Path("runs/v5-drive/adapters")
OUT = Path("runs/v5-twostage")
KEYS = ("pose_iou", "subject", "instance", "leakage", "identity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strengths", nargs="+", type=float, help="the second stage's img2img strengths")
    parser.add_argument("--amp-scale", type=float, default=0.0, help="the second stage's s_a (default 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    results = OUT / ("rows.jsonl" if not args.amp_scale else f"rows-amp{args.amp_scale:g}.jsonl")
    engine = ImPoster.from_pretrained("toy", device="cpu")
    metric = ToyGroundTruth()
    rows = []
    for toy in make_pairs(8, 0, "tune"):
        pair = engine.prepare(toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt)
        paper = engine.load_personalization(BOTH / f"{toy.pair_id}-500-0.0005", "imposter-guided")
        source = engine.load_personalization(
            SOURCE / f"imposter-subject-{toy.pair_id}-500-0.0005-r16-wide", "imposter-subject"
        )

        def score(images, name, toy=toy):
            items = [
                EvalItem(im, toy.source_image, toy.driving_image, toy.target_prompt, toy.target_image)
                for im in images
            ]
            scores = metric.score(items)
            means = {k: sum(s[k] for s in scores) / len(scores) for k in KEYS}
            rows.append({"pair_id": toy.pair_id, "settings": {"name": name}, "metrics": means})

        first = engine.generate(
            pair, paper, [0, 1], SamplingConfig(), method="imposter-guided", progress=False
        )
        score(first, "imposter-guided")
        for strength in args.strengths:
            sampling = SamplingConfig(
                k=0,
                amp_scale=args.amp_scale,
                phase_scale=0.0,
                driving_strength=strength,
                source_attention_from=0,
            )
            images = []
            for seed, layout in zip([0, 1], first, strict=True):
                second = engine.prepare(
                    toy.source_image, toy.source_prompt, layout, toy.driving_prompt, toy.target_prompt
                )
                images += engine.generate(
                    second, source, [seed], sampling, method="imposter-sdedit", progress=False
                )
            score(images, f"two-stage-{strength}")
        results.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(toy.pair_id, flush=True)
    for name in dict.fromkeys(r["settings"]["name"] for r in rows):
        metrics = [r["metrics"] for r in rows if r["settings"]["name"] == name]
        print(name, {k: round(statistics.mean(m[k] for m in metrics), 3) for k in KEYS})


if __name__ == "__main__":
    main()
