"""imposter with *detected* keypoints: the toy world's keypoint detector (``--detect-pose toy``), its
joint error, and the table with its keypoints instead of the renders' own (issue 19).

The README's table gives imposter the renders' exact joints, and a jitter sweep says how fast it
falls with Gaussian error (benchmarks/toy_keypoint_noise.py). A detector errs otherwise: rarely, and then by
a limb. The bundled toy model ships one (``imposter.toyworld.keypoint_detector``: a 170k-parameter CNN
trained on pretraining figures only, ``imposter toy keypoints --model DIR`` retrains it, 5 min on two
threads in bf16). This measures it:

    python benchmarks/toy_keypoint_detector.py      # under a minute on two threads (nothing is fine-tuned)

prints the mean joint error on the tune and table pairs' images, writes the table pairs *without* keypoint
columns under runs/toy-keypoint-detector/pairs/ and runs the bench with ``--detect-pose toy`` (imposter,
retarget-warp; 24 pairs x 2 seeds) into runs/toy-keypoint-detector/bench/, as a user without annotations
would. The summary goes to runs/toy-keypoint-detector/summary.md.

A weaker detector (fewer steps: ``imposter toy keypoints --model runs/kp-weak/s300 --steps 300``) errs the way
detectors err, by whole joints now and then, not by Gaussian jitter; ``--detector runs/kp-weak/s300/keypoints``
measures imposter with its joints, written as the pairs' keypoint files (the bundled detector is
what ``--detect-pose toy`` reads), into runs/toy-keypoint-detector/DETECTOR-NAME/ (the bench resumes by pair,
not by keypoints: a retrained detector wants a folder of another name).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imposter.cli import main as imposter
from imposter.fileio import write_text
from imposter.retarget import to_openpose
from imposter.toyworld.keypoint_detector import (
    KEYPOINTS_FOLDER,
    detect_toy_keypoints,
    joint_error,
    load_keypoint_detector,
)
from imposter.toyworld.pairs import make_pairs, write_pairs
from imposter.toyworld.plugin import toy_checkpoint

OUT = Path("runs/toy-keypoint-detector")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--detector", type=Path, default=None, help="another detector's keypoints/ folder")
    args = parser.parse_args()
    folder = args.detector or toy_checkpoint() / KEYPOINTS_FOLDER
    out = OUT if args.detector is None else OUT / args.detector.parent.name
    lines = [f"the toy keypoint detector in {folder}\n"]
    detector = load_keypoint_detector(folder)
    for split, count in (("tune", 8), ("table", args.pairs)):
        error = joint_error(detector, make_pairs(count, 0, split))
        lines.append(
            f"joint error on the {split} pairs' images (px): mean {error['mean']:.2f}, median "
            f"{error['median']:.2f}, 90th percentile {error['p90']:.2f}"
        )
    if args.detector is None:  # no keypoint files: the bench detects them, as a user's run would
        pairs = write_pairs(args.pairs, 0, out / "pairs", "table", keypoints=False)
        detect = ["--detect-pose", "toy"]
    else:  # this detector's joints as the pairs' keypoint files
        pairs, detect = write_pairs(args.pairs, 0, out / "pairs", "table"), []
        for pair in make_pairs(args.pairs, 0, "table"):
            for role in ("source", "driving"):
                found = detect_toy_keypoints(getattr(pair, f"{role}_image"), folder)
                path = pairs.parent / f"{role}_keypoints" / f"{pair.pair_id}.json"
                write_text(path, json.dumps(to_openpose(found)) + "\n")
    bench = out / "bench"
    argv = ["bench", "--pairs", str(pairs), "--model", "toy", *detect]
    argv += ["--methods", "imposter", "retarget-warp", "--metrics", "toy"]
    argv += ["--seeds", *map(str, args.seeds), "--out", str(bench), "--quiet"]
    if imposter(argv) != 0:
        raise SystemExit("the bench failed")
    text = "\n".join(lines) + "\n\n" + (bench / "report.md").read_text()
    write_text(out / "summary.md", text)
    print(text)


if __name__ == "__main__":
    main()
