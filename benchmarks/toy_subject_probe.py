"""Why does the toy v3 fine-tune not learn the source instance? A LoRA on both pairs against one on the source alone.

    python benchmarks/toy_subject_probe.py --pairs 6 --out runs/subject-probe                     # bundled model
    python benchmarks/toy_subject_probe.py --pairs 6 --model DIR --out runs/subject-probe-DIR     # another toy model

On ``tune`` pairs, one fine-tune per (pair, variant), then two samplings with the target caption alone (K 0,
no guidance, seeds 0 and 1): with the *source* caption ("a dog": can the LoRA give back the image it learned?)
and with the *target* caption ("a dog waving": Baseline++'s question). Variants: the LoRA on both pairs (the
paper's data, ImPoster's default recipe), the same LoRA on the source pair alone, and the source alone with
rank 16 on the attention projections *and* the ResNet convolutions. Scores by the toy metric against the
pair's ground truth (``instance``: is it this source instance; ``subject``: its class). Prints the means per
variant; resumes (one JSON line per pair and variant in OUT/probe.jsonl).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from statistics import mean

VARIANTS = {  # name -> (method that learns, fine-tune settings)
    "both pairs (default)": ("imposter-guided", {}),
    "source alone": ("subject-lora", {}),
    "source alone, r16 attn+conv": ("subject-lora", {"rank": 16, "lora_layers": "wide"}),
}
KEYS = ("instance", "subject", "pose_iou", "leakage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--steps", type=int, default=500, help="fine-tuning steps")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from imposter import FinetuneConfig, ImPoster, SamplingConfig
    from imposter.fileio import write_text
    from imposter.methods import get_method
    from imposter.metrics.base import EvalItem
    from imposter.toyworld.metric import ToyGroundTruth
    from imposter.toyworld.pairs import make_pairs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "probe.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r["pair_id"], r["variant"]) for r in rows}
    engine = ImPoster.from_pretrained(args.model, device="cpu")
    metric = ToyGroundTruth()
    sampling = SamplingConfig(k=0, amp_scale=0.0, phase_scale=0.0)
    plain = get_method("subject-lora")  # K 0, no guidance: the target caption alone
    for toy in make_pairs(args.pairs, 0, "tune"):
        pair = engine.prepare(toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt)
        for name, (learner, settings) in VARIANTS.items():
            if (toy.pair_id, name) in done:
                continue
            learned = engine.learn(
                pair, get_method(learner), FinetuneConfig(steps=args.steps, **settings), progress=False
            )
            row = {"pair_id": toy.pair_id, "variant": name, "final_loss": learned.info["final_loss"]}
            for caption, prompt in (
                ("source caption", toy.source_prompt),
                ("target caption", toy.target_prompt),
            ):
                asked = replace(pair, target_prompt=prompt)
                batches = engine.sample_batches(asked, learned, [0, 1], sampling, plain, progress=False)
                images = [image for batch in batches for _, image in batch]
                scores = metric.score(
                    [
                        EvalItem(i, toy.source_image, toy.driving_image, toy.target_prompt, toy.target_image)
                        for i in images
                    ]
                )
                row[caption] = {k: round(mean(s[k] for s in scores), 4) for k in KEYS}
            rows.append(row)
            write_text(results, "".join(json.dumps(r) + "\n" for r in rows))
            print(json.dumps(row), flush=True)
    print(f"\n{args.model}: {args.pairs} tune pairs x seeds 0 1, {args.steps} steps\n")
    print(
        "| fine-tune | instance, source caption | instance, target caption | subject, target caption | leakage |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in VARIANTS:
        mine = [r for r in rows if r["variant"] == name]
        if mine:
            cells = [
                mean(r["source caption"]["instance"] for r in mine),
                mean(r["target caption"]["instance"] for r in mine),
                mean(r["target caption"]["subject"] for r in mine),
                mean(r["target caption"]["leakage"] for r in mine),
            ]
            print(f"| {name} ({len(mine)} pairs) | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
