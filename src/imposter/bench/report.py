"""The report of a bench, rebuilt from its records alone (``OUT/results.jsonl``, or a list of records):

    OUT/report.md        the paper's Table 1 layout: methods as rows, metrics as columns, mean ± 95%
    OUT/per_pair.csv     the mean over seeds of every (pair, method)
    OUT/tradeoff.png     one point per method on two metrics that pull apart (the paper's Figure 4)
    OUT/grids/<pair>.png source | driving | [target] | one column per method, one row per seed

Each table cell is a mean over pairs of per-pair means, with a t-interval (:mod:`imposter.bench.stats`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..fileio import save_image, write_text
from ..images import fit_image, image_grid
from .stats import mean_interval
from .store import read_results

# metric -> (label, higher is better, decimals), in the order of the paper's Table 1, then the toy world
METRIC_COLUMNS: dict[str, tuple[str, bool, int]] = {
    "clip": ("CLIP", True, 4),
    "phase": ("Phase", True, 4),
    "dino": ("DINO", True, 4),
    "sscd": ("SSCD", True, 4),
    "pose_iou": ("pose IoU", True, 3),
    "subject": ("subject", True, 3),
    "instance": ("instance", True, 3),
    "leakage": ("leakage", False, 3),
    "identity": ("colour identity", True, 3),
    "colour_leakage": ("colour leakage", False, 3),
    "psnr": ("PSNR (dB)", True, 2),
}
# (x, y) panels of the trade-off plot: subject kept against action or text followed
TRADEOFFS = (("dino", "clip"), ("sscd", "clip"), ("subject", "pose_iou"), ("instance", "pose_iou"))
GRID_TILE = 192  # pixels per image in the grids: 120 pairs of 5 seeds x 6 columns stay a few hundred MB
CONFIDENCE = 0.95


@dataclass
class Summary:
    """Records averaged per (pair, method), with pairs, methods and metrics in report order."""

    pairs: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    images: dict[tuple[str, str], int] = field(default_factory=dict)
    pair_means: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def method_stats(self, method: str, metric: str) -> tuple[float, float | None, int] | None:
        """Mean over pairs, half-width of its t-interval, and the number of pairs; None if never scored."""
        values = [
            self.pair_means[(pair, method)][metric]
            for pair in self.pairs
            if metric in self.pair_means.get((pair, method), {})
        ]
        if not values:
            return None
        mean, half_width = mean_interval(values, CONFIDENCE)
        return mean, half_width, len(values)


def summarize(records: Sequence[Mapping[str, Any]]) -> Summary:
    """Average each (pair, method)'s images, metric by metric (an absent metric is not averaged in)."""
    summary = Summary(
        pairs=list(dict.fromkeys(record["pair_id"] for record in records)),
        methods=list(dict.fromkeys(record["method"] for record in records)),
    )
    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    for record in records:
        pair, method = record["pair_id"], record["method"]
        summary.images[(pair, method)] = summary.images.get((pair, method), 0) + 1
        for metric, value in record["metrics"].items():
            values.setdefault((pair, method), {}).setdefault(metric, []).append(float(value))
    found = {metric for scores in values.values() for metric in scores}
    summary.metrics = [m for m in METRIC_COLUMNS if m in found] + sorted(found - set(METRIC_COLUMNS))
    summary.pair_means = {
        key: {metric: math.fsum(scores) / len(scores) for metric, scores in per_metric.items()}
        for key, per_metric in values.items()
    }
    return summary


def write_report(
    out: str | Path,
    records: Sequence[Mapping[str, Any]] | None = None,
    log: Callable[[str], object] = print,
) -> list[Path]:
    """Write report.md, per_pair.csv, tradeoff.png and grids/ (records default to results.jsonl)."""
    out = Path(out)
    records = read_results(out) if records is None else records
    if not records:
        return []
    summary = summarize(records)
    written = [
        write_text(out / "report.md", markdown_report(summary, records)),
        write_text(out / "per_pair.csv", per_pair_csv(summary)),
    ]
    plot = tradeoff_figure(summary)
    if plot is None:
        log("no trade-off plot: it needs two metrics scored for some method")
    else:
        written.append(save_image(plot, out / "tradeoff.png"))
    for pair in summary.pairs:
        grid = pair_grid(out, [record for record in records if record["pair_id"] == pair], summary.methods)
        written.append(save_image(grid, out / "grids" / f"{pair}.png"))
    return written


def _cell(stats: tuple[float, float | None, int] | None, decimals: int, pairs: int) -> str:
    """mean ± half-width, and "(n = k)" when only k of the bench's pairs were scored."""
    if stats is None:
        return "–"
    mean, half_width, count = stats
    cell = f"{mean:.{decimals}f}" + (f" ± {half_width:.{decimals}f}" if half_width is not None else "")
    return cell + (f" (n = {count})" if count < pairs else "")


def markdown_report(summary: Summary, records: Sequence[Mapping[str, Any]]) -> str:
    """The results table (methods as rows) and each method's settings, as markdown."""
    seeds = sorted({record["seed"] for record in records})
    model = records[0].get("settings", {}).get("model", "?")
    header = ["method", "images"]
    for metric in summary.metrics:
        label, higher, _ = METRIC_COLUMNS.get(metric, (metric, True, 4))
        header.append(f"{label} {'↑' if higher else '↓'}")
    lines = [
        "# Benchmark results",
        "",
        f"{len(summary.pairs)} pairs x {len(seeds)} seeds ({' '.join(map(str, seeds))}), model `{model}`.",
        "Each cell: the mean over pairs of each pair's mean over seeds, ± the half-width of its 95% "
        "Student-t interval over pairs (a pair's seeds share its inputs and fine-tune, so pairs are the "
        "independent samples); (n = k): over the k pairs scored, fewer than all; ↑/↓: higher/lower is "
        "better; –: not computed.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|---:|" + "---:|" * len(summary.metrics),
    ]
    for method in summary.methods:
        count = sum(n for (_, m), n in summary.images.items() if m == method)
        cells = [
            _cell(
                summary.method_stats(method, metric),
                METRIC_COLUMNS.get(metric, ("", True, 4))[2],
                len(summary.pairs),
            )
            for metric in summary.metrics
        ]
        lines.append(f"| {method} | {count} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Settings",
        "",
        "| method | fine-tune | train steps | lr | K | s_a | s_p | phase cutoff | guided | DDIM steps | CFG "
        "| img2img strength |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method in summary.methods:
        settings = next(r for r in records if r["method"] == method).get("settings", {})
        ft, sp = settings.get("finetune", {}), settings.get("sampling", {})
        if learns_nothing(method):
            ft = {"kind": "none"}
        row = [ft.get("kind"), ft.get("steps"), ft.get("learning_rate"), sp.get("k")]
        row += [sp.get("amp_scale"), sp.get("phase_scale"), sp.get("phase_cutoff", "all") or "all"]
        row += [sp.get("guidance_until"), sp.get("steps"), sp.get("guidance_scale")]
        strength = sp.get("driving_strength")  # –: from pure noise
        row += [
            f"{strength} (inverted)" if strength is not None and sp.get("driving_inversion") else strength
        ]
        lines.append(f"| {method} | " + " | ".join("–" if v is None else str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def learns_nothing(method: str) -> bool:
    """Whether ``method`` is a reference row that fine-tunes nothing (its fine-tuning settings are unused)."""
    from ..methods import METHOD_NAMES, get_method

    return method in METHOD_NAMES and get_method(method).finetune_kind == "none"


def per_pair_csv(summary: Summary) -> str:
    """One row per (pair, method): the number of images and the mean of each metric over them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["pair_id", "method", "images", *summary.metrics])
    for pair in summary.pairs:
        for method in summary.methods:
            if (pair, method) not in summary.images:
                continue
            means = summary.pair_means.get((pair, method), {})
            row = [f"{means[m]:.6g}" if m in means else "" for m in summary.metrics]
            writer.writerow([pair, method, summary.images[(pair, method)], *row])
    return buffer.getvalue()


def tradeoff_figure(
    summary: Summary,
    ceiling: Mapping[str, float] | None = None,
    panels: Sequence[tuple[str, str]] = TRADEOFFS,
) -> Image.Image | None:
    """Scatter of the methods on each available metric pair, with 95% intervals over pairs: the trade-off
    (Pareto) picture. Reference rows (the floors: copies, phase swap, guidance or text alone) are grey
    squares; ``ceiling`` (metric -> value, e.g. the ground truth through the VAE) a star. None if no panel."""
    panels = [(x, y) for x, y in panels if {x, y} <= set(summary.metrics)]
    if not panels and len(summary.metrics) >= 2:
        panels = [(summary.metrics[0], summary.metrics[1])]
    points = {
        (x, y): [
            (method, sx, sy)
            for method in summary.methods
            if (sx := summary.method_stats(method, x)) and (sy := summary.method_stats(method, y))
        ]
        for x, y in panels
    }
    panels = [panel for panel in panels if points[panel]]
    if not panels:
        return None
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    from ..methods.references import REFERENCE_NAMES

    figure = Figure(figsize=(5 * len(panels) + 2, 4.5), layout="constrained")
    pairs = colormaps["tab20"].colors  # ten hues, each dark then light: twenty colours before one repeats
    palette = [pairs[2 * (i % 10) + i // 10] for i in range(20)]
    for axes, (x, y) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        generated = [method for method, _, _ in points[(x, y)] if method not in REFERENCE_NAMES]
        for method, (mx, hx, _), (my, hy, _) in points[(x, y)]:
            if method in REFERENCE_NAMES:
                axes.errorbar(
                    mx, my, xerr=hx, yerr=hy, fmt="s", color="0.55", capsize=2, label=f"floor: {method}"
                )
                axes.annotate(
                    method, (mx, my), fontsize=7, color="0.4", xytext=(4, 3), textcoords="offset points"
                )
            else:
                i = generated.index(method)  # ten dark colours, ten light ones with another marker, ...
                style = {"fmt": "o^Dv"[i // 10 % 4], "color": palette[i % 20]}
                axes.errorbar(mx, my, xerr=hx, yerr=hy, capsize=3, label=method, **style)
        if ceiling and x in ceiling and y in ceiling:
            axes.plot(
                ceiling[x], ceiling[y], "*", markersize=14, color="gold", markeredgecolor="k", label="ceiling"
            )
        for set_label, metric in ((axes.set_xlabel, x), (axes.set_ylabel, y)):
            label, higher, _ = METRIC_COLUMNS.get(metric, (metric, True, 4))
            set_label(f"{label} ({'higher' if higher else 'lower'} is better)")
        axes.grid(alpha=0.3)
    figure.legend(*axes.get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return Image.open(buffer)


def pair_grid(out: Path, records: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> Image.Image:
    """source | driving | [target] | each method, one row per seed (inputs on the first row only)."""
    first = records[0]
    settings, pair = first.get("settings", {}), first.get("pair", {})
    width, height = settings.get("width", GRID_TILE), settings.get("height", GRID_TILE)
    tile = (GRID_TILE, max(1, round(GRID_TILE * height / width)))
    roles = [role for role in ("source", "driving", "target") if pair.get(f"{role}_image")]
    inputs = [_tile(pair[f"{role}_image"], tile, settings.get("fit", "pad")) for role in roles]
    blank = Image.new("RGB", tile, (255, 255, 255))
    by_key = {(record["method"], record["seed"]): record for record in records}
    seeds = list(dict.fromkeys(record["seed"] for record in records))
    rows = []
    for row, seed in enumerate(seeds):
        generated = [
            _tile(out / by_key[(method, seed)]["image"], tile) if (method, seed) in by_key else blank
            for method in methods
        ]
        rows.append([*(inputs if row == 0 else [blank] * len(inputs)), *generated])
    return image_grid(rows, [*roles, *methods])


def _tile(path: str | Path, size: tuple[int, int], fit: str = "pad") -> Image.Image:
    """An image fitted to a grid tile; a grey tile if the file is gone (a moved dataset, say)."""
    try:
        with Image.open(path) as image:
            return fit_image(image.convert("RGB"), *size, fit)
    except OSError:
        return Image.new("RGB", size, (128, 128, 128))
