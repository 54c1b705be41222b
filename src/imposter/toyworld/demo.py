"""``imposter demo``: the whole method on the bundled toy model, with ground truth, in a few CPU minutes.

Renders one held-out pair (a subject never shown doing that action in pretraining), generates with
``imposter`` (the source moved into the driving pose by both images' body keypoints, found by the toy
world's detector, then redrawn: no annotations, nothing fine-tuned), fine-tunes once for ImPoster's
sampling (``imposter-guided``), the paper's recipe (``imposter-paper``) and Baseline++ (which share that
fine-tune), adds the model-free phase swap (the floor a method must beat), scores every image against the
ground truth, and writes the bench outputs (table, records) under ``out/bench`` and the picture at
``out/grid.png``: source, driving, ground truth, then a column per method, a row per seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from ..bench.config import BenchConfig, MethodSetup
from ..bench.runner import run_bench
from ..config import FinetuneConfig, SamplingConfig
from ..fileio import save_image
from ..methods import get_method
from .pairs import write_pairs

DEMO_METHODS = ("imposter", "imposter-guided", "imposter-paper", "baseline++", "phase-swap")
DEMO_METRICS = ("toy", "phase")


def run_demo(
    out: str | Path = "runs/demo",
    pair_seed: int = 0,
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = DEMO_METHODS,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], object] = print,
    finetune: FinetuneConfig | None = None,
    sampling: SamplingConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Run the demo into ``out``; returns the path of the picture (source | driving | truth | methods).

    ``finetune`` and ``sampling`` (None: each method's defaults) exist for quick checks of the demo itself.
    A rerun resumes what ``out`` holds; a demo made by another version (other settings) is refused unless
    ``overwrite``.
    """
    out = Path(out)
    csv = write_pairs(1, pair_seed, out / "pair", keypoints=False)  # imposter detects them
    setups = []
    for name in methods:
        method = get_method(name)
        setups.append(
            MethodSetup.of(
                method,
                finetune and method.finetune_config(finetune),
                sampling and method.sampling_config(sampling),
            )
        )
    config = BenchConfig(
        pairs=str(csv),
        methods=tuple(setups),
        seeds=tuple(seeds),
        model="toy",
        device=device,
        metrics=DEMO_METRICS,
        detect_pose="toy",
    )
    records = run_bench(config, out / "bench", overwrite=overwrite, progress=progress, log=log)
    log("\n" + (out / "bench" / "report.md").read_text())
    with Image.open(out / "bench" / "grids" / f"{records[0]['pair_id']}.png") as grid:
        picture = save_image(grid, out / "grid.png")
    log(f"\nthe picture: {picture}\nall outputs: {out / 'bench'} (report.md, results.jsonl, images/)")
    return picture
