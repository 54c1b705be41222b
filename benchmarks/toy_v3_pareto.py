"""The README's Pareto picture (docs/toy_v3_pareto.png) from the committed toy world v3 table, in today's
method names, with the default as a user runs it (joints found by the toy detector) as its own point.

The table's bench (docs/results/toy-v31-table/results.jsonl, `python benchmarks/toyworld.py table ...`, the
README's command) and the detector's (docs/results/toy-v31-retarget/detector-results.jsonl, `python
benchmarks/toy_keypoint_detector.py`) were made before 2026-12-05 and keep that day's names: their
`imposter` is today's `imposter-guided`, their `imposter-retarget` today's `imposter`. The ceiling is the
table's VAE row (docs/results/toy-v31-table/vae_ceiling.md).

    python benchmarks/toy_v3_pareto.py      # writes docs/toy_v3_pareto.png
"""

from __future__ import annotations

import json
from pathlib import Path

from imposter.bench.report import summarize, tradeoff_figure
from imposter.fileio import save_image

RESULTS = Path("docs/results")
RENAMED = {"imposter": "imposter-guided", "imposter-retarget": "imposter (keypoint files)"}
CEILING = {"pose_iou": 0.947, "subject": 0.911, "instance": 0.714}  # vae_ceiling.md


def records(path: Path, names: dict[str, str], keep: set[str] | None = None) -> list[dict]:
    """The bench records of ``path``, methods renamed by ``names``; only those of ``keep`` (None: all)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if keep is None or row["method"] in keep]
    return [dict(row, method=names.get(row["method"], row["method"])) for row in rows]


def main() -> None:
    rows = records(RESULTS / "toy-v31-table/results.jsonl", RENAMED)
    rows += records(
        RESULTS / "toy-v31-retarget/detector-results.jsonl",
        {"imposter-retarget": "imposter"},
        {"imposter-retarget"},
    )
    figure = tradeoff_figure(
        summarize(rows), CEILING, panels=(("subject", "pose_iou"), ("instance", "pose_iou"))
    )
    save_image(figure, "docs/toy_v3_pareto.png")
    print("docs/toy_v3_pareto.png")


if __name__ == "__main__":
    main()
