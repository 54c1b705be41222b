"""Scoring saved images: the metrics a record lacks, added without generating anything (``imposter bench
rescore``, and a resumed bench whose metric could not load before)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..images import load_image
from ..metrics.base import EvalItem, Metric
from ..models import resolve_device
from .config import Key, MetricModels
from .report import write_report
from .store import (
    read_record,
    read_results,
    remember_metrics,
    settings_conflict,
    stored_settings,
    write_record,
    write_results,
)


def rescore_bench(
    out: str | Path,
    names: Sequence[str],
    models: MetricModels | None = None,
    *,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], object] = tqdm.write,
) -> list[dict[str, Any]]:
    """Score the images of a bench's ``results.jsonl`` with the named metrics their records lack.

    Nothing is generated and no diffusion model is loaded. Each record is rewritten (atomically) once
    scored, so a killed rescore carries on where it stopped; then ``results.jsonl`` and the report
    are written again. Returns the records, in the order of ``results.jsonl``.
    """
    out, models = Path(out), models or MetricModels()
    stored = stored_settings(out)
    if stored is None:
        raise DataError(
            f"{out} holds no bench (no bench_config.json); give the $out of an imposter bench run"
        )
    wanted = {name: models.settings(name) for name in names}
    conflict = settings_conflict(stored, {**stored, "metrics": wanted})
    if conflict:
        raise ConfigError(
            f"{out} was scored with other metric settings ({conflict}); pass the model it was scored with"
        )
    # the record files, not results.jsonl, are current: a killed rescore rewrote some of them
    records = [read_record(out, r["pair_id"], r["method"], r["seed"]) or r for r in read_results(out)]
    metrics = models.load(names, resolve_device(device), log)
    remember_metrics(out, {name: models.settings(name) for name in metrics})
    position = {record_key(record): i for i, record in enumerate(records)}
    unscored = [record for record in records if lacks(record, metrics)]
    with tqdm(total=len(unscored), desc="rescore", unit="image", disable=not progress) as bar:
        for record in score_saved(out, unscored, metrics):
            records[position[record_key(record)]] = record
            bar.update(1)
    log(f"scored {len(unscored)} of {len(records)} images with {', '.join(metrics) or 'no metric'}")
    write_results(out, records)
    write_report(out, records, log=log)
    return records


def score_saved(
    out: Path, records: Sequence[dict[str, Any]], metrics: Mapping[str, Metric]
) -> Iterator[dict[str, Any]]:
    """Score saved images with the metrics their records lack; write and yield each updated record.

    The records of one pair are scored together, against that pair's inputs loaded once.
    """
    by_pair: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_pair.setdefault(record["pair_id"], []).append(record)
    for pair_records in by_pair.values():
        row = pair_records[0]["pair"]
        source = load_image(row["source_image"], "source")
        driving = load_image(row["driving_image"], "driving")
        target = load_image(row["target_image"], "target") if row.get("target_image") else None
        items = [
            EvalItem(
                saved_image(out / record["image"]),
                source,
                driving,
                record["settings"]["target_prompt"],
                target,
            )
            for record in pair_records
        ]
        scores: list[dict[str, float]] = [{} for _ in pair_records]
        for name, metric in metrics.items():
            chosen = [i for i, record in enumerate(pair_records) if lacks(record, [name])]
            for i, values in zip(chosen, metric.score_available([items[i] for i in chosen]), strict=True):
                scores[i].update(values)
        for record, values in zip(pair_records, scores, strict=True):
            ran = [name for name in metrics if lacks(record, [name])]
            if not ran:
                continue
            updated = {
                **record,
                "metrics": {**record["metrics"], **values},
                "metrics_run": sorted({*record.get("metrics_run", ()), *ran}),
            }
            write_record(out, updated)
            yield updated


def saved_image(path: Path) -> Image.Image:
    """A generated image as saved (not an input: no minimum size, no conversion warnings)."""
    with Image.open(path) as saved:
        return saved.convert("RGB")


def lacks(record: Mapping[str, Any], names: Iterable[str]) -> bool:
    """Whether some of ``names`` has not scored the record's image (records before metrics_run: none has)."""
    return not set(names) <= set(record.get("metrics_run", ()))


def record_key(record: Mapping[str, Any]) -> Key:
    return (record["pair_id"], record["method"], record["seed"])
