"""The bench output folder: where each file lives, one record per image, and the merged JSON lines.

    OUT/bench_config.json                     the settings every record was made with, and versions
    OUT/records/<pair>/<method>/seed_<n>.json one image's record, written after its image
    OUT/images/<pair>/<method>/seed_<n>.png   the image
    OUT/adapters/<pair>/<key>-<hash>/         one fine-tune, shared by the methods of its group
    OUT/results.jsonl                         every record of the command, in pair, method, seed order

Every file is written atomically, so a run killed at any moment leaves whole files only; a record
exists only once its image does, so "the record exists" is what "made" means. A record lists the
metrics that scored it (``metrics_run``); one a record lacks is scored later from the saved image.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..fileio import write_json, write_text
from ..run import environment, seed_image_name

CONFIG_FILE = "bench_config.json"
RESULTS_FILE = "results.jsonl"
RECORDS_DIR = "records"
IMAGES_DIR = "images"
ADAPTERS_DIR = "adapters"
REPORT_ENTRIES = ("report.md", "per_pair.csv", "tradeoff.png", "grids")
OUTPUT_ENTRIES = (CONFIG_FILE, RESULTS_FILE, RECORDS_DIR, IMAGES_DIR, ADAPTERS_DIR, *REPORT_ENTRIES)


def record_path(out: Path, pair_id: str, method: str, seed: int) -> Path:
    """Where the record of one image lives."""
    return out / RECORDS_DIR / pair_id / method / f"seed_{seed}.json"


def image_path(out: Path, pair_id: str, method: str, seed: int) -> Path:
    """Where one generated image lives."""
    return out / IMAGES_DIR / pair_id / method / seed_image_name(seed)


def adapter_path(out: Path, pair_id: str, group: str) -> Path:
    """Where the fine-tune of one (pair, group) lives."""
    return out / ADAPTERS_DIR / pair_id / group


def read_record(out: Path, pair_id: str, method: str, seed: int) -> dict[str, Any] | None:
    """The record of one image, or None if it is not done."""
    path = record_path(out, pair_id, method, seed)
    return json.loads(path.read_text()) if path.exists() else None


def write_record(out: Path, record: Mapping[str, Any]) -> Path:
    """Write one image's record atomically (after its image)."""
    return write_json(record_path(out, record["pair_id"], record["method"], record["seed"]), record)


def write_results(out: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write the records as JSON lines (keys sorted, so equal records give equal lines), atomically."""
    lines = [json.dumps(record, sort_keys=True, default=str) + "\n" for record in records]
    return write_text(out / RESULTS_FILE, "".join(lines))


def read_results(out: str | Path) -> list[dict[str, Any]]:
    """The records in ``OUT/results.jsonl``; DataError naming the line if one is not a record."""
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"{path} not found; give the $out folder of an imposter bench run")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path} line {number} is not JSON ({error}); rerun imposter bench") from error
        missing = [key for key in ("pair_id", "method", "seed", "metrics") if key not in record]
        if missing:
            raise DataError(f"{path} line {number} lacks {', '.join(missing)}; rerun imposter bench")
        records.append(record)
    if not records:
        raise DataError(f"{path} holds no records; run imposter bench first")
    return records


def settings_conflict(previous: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The first setting that differs between two benches ("path: old there, new now"), or None.

    Seeds, methods and metrics may grow from one run to the next; a method or metric present in both
    must keep its settings.
    """
    grows = ("methods", "metrics")
    shared = {part: set(previous.get(part, {})) & set(current.get(part, {})) for part in grows}

    def comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
        fixed = {key: value for key, value in settings.items() if key not in ("seeds", *grows)}
        return {
            **fixed,
            **{part: {name: settings[part][name] for name in sorted(shared[part])} for part in grows},
        }

    return _difference(comparable(previous), comparable(current))


def _difference(before: Any, now: Any, path: str = "") -> str | None:
    if isinstance(before, Mapping) and isinstance(now, Mapping):
        for key in sorted(set(before) | set(now)):
            found = _difference(before.get(key), now.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if before == now else f"{path}: {before!r} there, {now!r} now"


def prepare_output(out: Path, settings: Mapping[str, Any], overwrite: bool) -> None:
    """Refuse a folder that holds a bench with other settings (unless ``overwrite``), then record ours.

    The stored methods are the union over runs, so a method dropped from one command and brought back
    with other settings is still caught. Metrics are stored once they have scored an image
    (:func:`remember_metrics`): one that could not load may come back with another model.
    """
    settings = json.loads(json.dumps(settings, default=str))  # as JSON sees it: tuples become lists
    previous = stored_settings(out)
    if previous is not None and (conflict := settings_conflict(previous, settings)):
        if not overwrite:
            raise ConfigError(
                f"{out} holds a bench with other settings ({conflict}); choose another $out, "
                "or pass $overwrite to replace it"
            )
        for name in OUTPUT_ENTRIES:
            entry = out / name
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        previous = None
    methods = {**(previous or {}).get("methods", {}), **settings["methods"]}
    metrics = (previous or {}).get("metrics", {})
    write_json(
        out / CONFIG_FILE,
        {"settings": {**settings, "methods": methods, "metrics": metrics}, "environment": environment()},
    )


def remember_metrics(out: Path, metrics: Mapping[str, Any]) -> None:
    """Add ``{metric: its settings}`` to the stored settings, once those metrics score images here."""
    stored = json.loads((out / CONFIG_FILE).read_text())
    settings = stored["settings"]
    settings["metrics"] = {**settings.get("metrics", {}), **json.loads(json.dumps(metrics, default=str))}
    write_json(out / CONFIG_FILE, stored)


def stored_settings(out: Path) -> dict[str, Any] | None:
    """The settings in ``OUT/bench_config.json``, or None if there is none."""
    path = out / CONFIG_FILE
    return json.loads(path.read_text())["settings"] if path.exists() else None
