"""Does a different fine-tune learn the source instance on toy world v3? A small probe, not a sweep.

    python benchmarks/toy_finetune_probe.py --pairs 4 --out runs/v3-probe

On ``tune`` pairs, one fine-tune per (pair, variant), then Baseline++ (the target caption alone) sampled
from it, scored by the toy metric; text-only (no fine-tune) is the floor. Variants: the default LoRA
(rank 4 on the attention projections, lr 5e-4), a 4x learning rate, and rank 16 on the attention
projections *and* the ResNet convolutions. Prints per variant the mean ``instance``, ``subject``,
``identity`` and ``pose_iou`` and the per-pair ``instance`` gain over text-only. Resumes (one JSON line per
pair and variant in OUT/probe.jsonl).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean, stdev

VARIANTS = {
    "lora-default": {},
    "lora-lr2e-3": {"learning_rate": 2e-3},
    "lora-r16-attn+conv": {
        "rank": 16,
        "target_modules": ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "conv_shortcut"),
    },
}
KEYS = ("instance", "subject", "identity", "pose_iou")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=500, help="fine-tuning steps")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from imposter import FinetuneConfig, ImPoster, SamplingConfig
    from imposter.fileio import write_text
    from imposter.metrics.base import EvalItem
    from imposter.toyworld.metric import ToyGroundTruth
    from imposter.toyworld.pairs import make_pairs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "probe.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r["pair_id"], r["variant"]) for r in rows}
    engine = ImPoster.from_pretrained("toy", device="cpu")
    metric = ToyGroundTruth()
    sampling = SamplingConfig(k=0, amp_scale=0.0, phase_scale=0.0)
    for toy in make_pairs(args.pairs, 0, "tune"):
        pair = engine.prepare(toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt)
        for variant in ("text-only", *VARIANTS):
            if (toy.pair_id, variant) in done:
                continue
            if variant == "text-only":
                learned, method = engine.personalize(pair, "text-only", progress=False), "text-only"
            else:
                finetune = FinetuneConfig(steps=args.steps, **VARIANTS[variant])
                learned, method = (
                    engine.personalize(pair, "imposter-guided", finetune, progress=False),
                    "baseline++",
                )
            images = engine.generate(pair, learned, args.seeds, sampling, method=method, progress=False)
            items = [
                EvalItem(image, toy.source_image, toy.driving_image, toy.target_prompt, toy.target_image)
                for image in images
            ]
            scores = metric.score(items)
            rows.append(
                {"pair_id": toy.pair_id, "variant": variant, **{k: mean(s[k] for s in scores) for k in KEYS}}
            )
            write_text(results, "".join(json.dumps(r) + "\n" for r in rows))
            print(json.dumps(rows[-1]), flush=True)
    floor = {r["pair_id"]: r["instance"] for r in rows if r["variant"] == "text-only"}
    print(
        f"\n{args.pairs} tune pairs x {len(args.seeds)} seeds, {args.steps} steps; Baseline++ from each fine-tune\n"
    )
    print("| variant | " + " | ".join(KEYS) + " | instance gain over text-only (mean ± sd) |")
    print("|---|" + "---:|" * (len(KEYS) + 1))
    for variant in ("text-only", *VARIANTS):
        mine = [r for r in rows if r["variant"] == variant]
        gains = [r["instance"] - floor[r["pair_id"]] for r in mine if r["pair_id"] in floor]
        spread = f" ± {stdev(gains):.3f}" if len(gains) > 1 else ""
        cells = " | ".join(f"{mean(r[k] for r in mine):.3f}" for k in KEYS)
        print(f"| {variant} | {cells} | {mean(gains):+.3f}{spread} |")


if __name__ == "__main__":
    main()
