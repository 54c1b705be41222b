"""How long ``imposter toy train`` takes on this machine: the real command, end to end, stage by stage.

    OMP_NUM_THREADS=2 python benchmarks/toy_train_time.py --out /tmp/toytrain   # about 2 h on 2 idle cores
    python benchmarks/toy_train_time.py --out /tmp/toytrain --report            # the table of a finished run

Runs ``imposter toy train --out OUT --quiet`` (its defaults are the bundled model's recipe; any other flag is
passed on to it) as a subprocess, times it whole, and prints a markdown table of the stage timings the
command records in ``OUT/training.json``, the add-on stages (ControlNet, keypoint detector) apart. A killed
run resumes where it stopped (``OUT.work/``), so the wall time of a resumed run is not the training time:
it then prints the stages' timings alone. Run it on an otherwise idle machine.

An earlier version extrapolated each stage from 20- and 60-step runs; the stages' fixed costs (encoding
40,000 renders, building the models) vary by tens of seconds between runs, which a 40-step difference
turns into a per-step error of up to a second: it gave the UNet stage 22 min once and 82 min the next
time, where the end-to-end run measured 30 (docs/results/toy-train-time.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("render", "vae", "decoder", "classifier", "unet", "sanity")
ADD_ONS = ("controlnet", "keypoints")


def table(record: dict, wall_s: float | None) -> str:
    timings = record["timings_s"]
    rows = ["| stage | minutes |", "|---|---:|"]
    rows += [f"| {stage} | {timings[stage] / 60:.1f} |" for stage in STAGES if stage in timings]
    total = sum(timings.values())
    rows.append(f"| the pipeline's stages | {total / 60:.1f} |")
    for add_on in ADD_ONS:  # the pose ControlNet's and the keypoint detector's, recorded with their settings
        if add_on in record:
            rows.append(f"| {add_on} | {record[add_on]['seconds'] / 60:.1f} |")
            total += record[add_on]["seconds"]
    rows.append(f"| sum of the stages | {total / 60:.1f} |")
    if wall_s is not None:
        rows.append(f"| **wall time of the command** (stages + loading and saving) | **{wall_s / 60:.1f}** |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the checkpoint folder to train into")
    parser.add_argument(
        "--report", action="store_true", help="print the table of a finished run, train nothing"
    )
    args, extra = parser.parse_known_args()  # the rest goes to imposter toy train (--precision bf16 ...)
    record_path = args.out / "training.json"
    wall_s = None
    if not args.report:
        resumed = Path(f"{args.out}.work").exists()
        command = [
            sys.executable,
            "-m",
            "imposter",
            "toy",
            "train",
            "--out",
            str(args.out),
            "--quiet",
            *extra,
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall_s = None if resumed else time.perf_counter() - start
        if resumed:
            print(
                "resumed an earlier run: its wall time is not the training time, so only the stages' are shown"
            )
    print(table(json.loads(record_path.read_text()), wall_s))


if __name__ == "__main__":
    main()
