"""Choosing imposter's settings on the tune split (issue 19, direction 5): img2img of the retargeted
source at several strengths, from the pretrained model or the source LoRA, with or without ImPoster's
guidance, the source's attention, a lower CFG, or the source caption instead of the target's.

Each pair's retargeted picture is made from the renders' own joints (a perfect OpenPose), or with every
joint jittered by ``--keypoints noisy<sigma>`` pixels (seeded per pair). The source LoRA is the sweeps' (rank
16, wide, 500 steps) made by

    python benchmarks/toyworld.py sweep --method imposter-subject --rank 16 --lora-layers wide --pairs 8 \
        --seeds 0 1 --threads 1 --k 0 --out runs/v5-drive

The rows of docs/toy-defaults.md's retargeting section (a few seconds per setting and pair on one core):

    B=benchmarks/toy_retarget_tune.py
    python $B --strengths 0 0.1 0.2 0.3 0.4 0.5 --lora                       # the source LoRA, s_a 0.03, attention
    python $B --strengths 0.3 --lora --phase-scale 0.2                       # ... and phase guidance to the warp
    python $B --strengths 0.1 0.2 0.3 0.5 --no-guidance                      # the pretrained model alone
    python $B --strengths 0.1 0.15 0.2 0.3                                   # ... with the source's attention
    for K in noisy0.5 noisy1 noisy2; do python $B --keypoints $K --strengths 0 0.1 --no-guidance; done
    for S in 0.3 0.5 0.8; do python $B --strengths 0.1 --no-guidance --scene-strength $S; done

One JSON line per pair and setting in runs/v6-retarget/sweep.jsonl (resumable); strength 0 scores the
retargeted picture itself.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from imposter import ImPoster, SamplingConfig
from imposter.metrics.base import EvalItem
from imposter.retarget import retargeted_image
from imposter.toyworld.metric import ToyGroundTruth
from imposter.toyworld.pairs import make_pairs

OUT = Path("runs/v6-retarget")
LORAS = Path("runs/v5-drive/adapters")


def keypoints(pair, mode: str) -> tuple[dict, dict]:
    """Both images' keypoints: the renders' own, or jittered by ``noisy<sigma>`` pixels."""
    source, driving = pair.source_keypoints, pair.driving_keypoints
    if mode == "oracle":
        return source, driving
    sigma = float(mode.removeprefix("noisy"))
    rng = np.random.default_rng(int(pair.pair_id[-3:]))
    return tuple(
        {name: np.asarray(xy) + rng.normal(0, sigma, 2) for name, xy in points.items()}
        for points in (source, driving)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strengths", type=float, nargs="+", required=True)
    parser.add_argument("--keypoints", default="oracle", help="oracle, or noisy<sigma> (pixels)")
    parser.add_argument("--lora", action="store_true", help="the source LoRA (default: the pretrained model)")
    parser.add_argument(
        "--no-guidance", action="store_true", help="no amplitude guidance, no source attention"
    )
    parser.add_argument(
        "--phase-scale", type=float, default=0.0, help="phase guidance toward the warp (cutoff 0.35)"
    )
    parser.add_argument("--guidance-scale", type=float, default=7.5)
    parser.add_argument(
        "--source-caption", action="store_true", help="the source's caption, not the target's"
    )
    parser.add_argument(
        "--scene-strength", type=float, default=None,
        help="all but the moved figure redrawn from this higher strength (--scene-strength)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    results = OUT / "sweep.jsonl"
    done = set()
    if results.exists():
        for line in results.read_text().splitlines():
            row = json.loads(line)
            done.add((row["pair_id"], json.dumps(row["settings"], sort_keys=True)))
    engine = ImPoster.from_pretrained("toy")
    metric = ToyGroundTruth()
    method = "imposter-subject" if args.lora else "text-only"
    base = {"k": 0, "amp_scale": 0.03, "phase_scale": 0.0, "source_attention_from": 0}
    if args.no_guidance:
        base.update(amp_scale=0.0, source_attention_from=None)
    if args.phase_scale:
        base.update(phase_scale=args.phase_scale, phase_cutoff=0.35)
    if args.guidance_scale != 7.5:
        base["guidance_scale"] = args.guidance_scale
    if args.scene_strength is not None:
        base["scene_strength"] = args.scene_strength
    label = {"keypoints": args.keypoints} | ({} if args.lora else {"method": "text-only"})
    label |= {"prompt": "source"} if args.source_caption else {}
    for pair in make_pairs(8, 0, "tune"):
        source_points, driving_points = keypoints(pair, args.keypoints)
        warped = retargeted_image(pair.source_image, pair.driving_image, source_points, driving_points)
        prompt = pair.source_prompt if args.source_caption else None
        if args.scene_strength is None:
            prepared = engine.prepare(
                pair.source_image, pair.source_prompt, warped, pair.driving_prompt, prompt
            )
        else:  # the method itself, which knows where the moved figure lies
            prepared = engine.prepare(
                pair.source_image, pair.source_prompt, pair.driving_image, pair.driving_prompt, prompt,
                source_keypoints=source_points, driving_keypoints=driving_points,
            )  # fmt: skip
            method = "imposter"
        if args.lora:
            folder = LORAS / f"imposter-subject-{pair.pair_id}-500-0.0005-r16-wide"
            learned = engine.load_personalization(folder, "imposter-subject")
        else:
            learned = engine.personalize(prepared, method, progress=False)
        for strength in args.strengths:
            setting = dict(base, driving_strength=strength, **label)
            if (pair.pair_id, json.dumps(setting, sort_keys=True)) in done:
                continue
            if strength == 0:
                images = [warped, warped]
            else:
                sampling = replace(SamplingConfig(), **{k: v for k, v in setting.items() if k not in label})
                images = engine.generate(prepared, learned, [0, 1], sampling, method=method, progress=False)
            items = [
                EvalItem(im, pair.source_image, pair.driving_image, pair.target_prompt, pair.target_image)
                for im in images
            ]
            scores = metric.score(items)
            row = {
                "pair_id": pair.pair_id,
                "settings": setting,
                "metrics": {key: float(np.mean([s[key] for s in scores])) for key in scores[0]},
            }
            with results.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(pair.pair_id, strength, {k: round(v, 3) for k, v in row["metrics"].items()}, flush=True)


if __name__ == "__main__":
    main()
