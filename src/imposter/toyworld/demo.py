"""``imposter demo``: the whole method on the bundled toy model, with ground truth, in a few CPU minutes.

Renders one held-out pair (a subject never shown doing that action in pretraining), fine-tunes once,
generates with ImPoster and Baseline++ (which share that fine-tune), scores every image against the
ground truth, and writes the bench outputs (grid, table, records) under ``out``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..bench.runner import BenchConfig, MethodSetup, run_bench
from .pairs import write_pairs

DEMO_METHODS = ("imposter", "baseline++")
DEMO_METRICS = ("toy", "phase")


def run_demo(
    out: str | Path = "runs/demo",
    pair_seed: int = 0,
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = DEMO_METHODS,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], object] = print,
) -> Path:
    """Run the demo into ``out``; returns the path of the picture (source | driving | truth | methods)."""
    out = Path(out)
    csv = write_pairs(1, pair_seed, out / "pair")
    config = BenchConfig(
        pairs=str(csv),
        methods=tuple(MethodSetup.of(name) for name in methods),
        seeds=tuple(seeds),
        model="toy",
        device=device,
        metrics=DEMO_METRICS,
    )
    records = run_bench(config, out / "bench", progress=progress, log=log)
    log("\n" + (out / "bench" / "report.md").read_text())
    picture = out / "bench" / "grids" / f"{records[0]['pair_id']}.png"
    log(f"\nthe picture: {picture}\nall outputs: {out / 'bench'} (report.md, results.jsonl, images/)")
    return picture
