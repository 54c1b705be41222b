"""The README's Pareto picture (docs/toy_v3_pareto.png) from the committed toy world table of the bundled
model, with the default as a user runs it (joints found by the toy detector) as its own point.

The table's bench (docs/results/toy-v32-table/results.jsonl, `python benchmarks/toyworld.py table ...`, the
README's command) gives every row, its `imposter` with the renders' own joints as keypoint files; the
detector's bench (docs/results/toy-v32-retarget/detector-results.jsonl, `python
benchmarks/toy_keypoint_detector.py`) gives `imposter` with no keypoint files. The ceiling is the table's VAE
row (vae_ceiling.md beside its results).

    python benchmarks/toy_v3_pareto.py      # writes docs/toy_v3_pareto.png

(v3.1's picture, docs/toy_v31_pareto.png, was made by this script's version of 2026-12-05 from
docs/results/toy-v31-*.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imposter.bench.report import summarize, tradeoff_figure
from imposter.fileio import save_image

RESULTS = Path("docs/results")


def records(path: Path, names: dict[str, str], keep: set[str] | None = None) -> list[dict]:
    """The bench records of ``path``, methods renamed by ``names``; only those of ``keep`` (None: all)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if keep is None or row["method"] in keep]
    return [dict(row, method=names.get(row["method"], row["method"])) for row in rows]


def ceiling(path: Path) -> dict[str, float]:
    """The means of the VAE ceiling's row in ``path`` (a header row of metric names, then the ceiling's
    row of "mean ± half-width" cells), by metric."""
    header, row = (line.strip().strip("|").split("|") for line in path.read_text().splitlines()[:2])
    return {key.strip(): float(cell.split("±")[0]) for key, cell in zip(header[1:], row[1:], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=RESULTS / "toy-v32-table")
    parser.add_argument("--detector", type=Path, default=RESULTS / "toy-v32-retarget/detector-results.jsonl")
    parser.add_argument("--out", type=Path, default=Path("docs/toy_v3_pareto.png"))
    args = parser.parse_args()
    rows = records(args.table / "results.jsonl", {"imposter": "imposter (keypoint files)"})
    rows += records(args.detector, {}, {"imposter"})
    best = ceiling(args.table / "vae_ceiling.md")
    figure = tradeoff_figure(
        summarize(rows),
        {key: best[key] for key in ("pose_iou", "subject", "instance")},
        panels=(("subject", "pose_iou"), ("instance", "pose_iou")),
    )
    save_image(figure, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
