"""The ``bench`` job: several methods on every pair and seed of a pairs CSV, scored and reported.

For each pair, the requested methods are grouped by what they learn: methods with the same
``personalization_key`` and the same resolved fine-tune settings (ImPoster, Baseline++ and the
ablations) share one fine-tune, which then samples every method of the group and every seed. Each
image is scored as soon as it exists and gets a record file (see :mod:`imposter.bench.store`); a
record that exists is never redone, so the same command, run again after a kill, carries on. A
record lists the metrics that scored it; a requested metric it lacks (its model could not be loaded
then) is scored from the saved image on the next run, and :func:`rescore_bench` adds metrics to a
finished bench. Neither regenerates an image.

``run_bench(shard=(i, n))`` does only pairs ``i::n`` (in CSV order); :mod:`imposter.bench.launch`
runs the shares in several processes and merges them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from tqdm.auto import tqdm

from ..config import FITS, FinetuneConfig, SamplingConfig
from ..engine import ImPoster, PreparedPair
from ..errors import ConfigError, DataError
from ..fileio import atomic_directory, save_image
from ..images import load_image
from ..methods import get_method
from ..methods.base import Method
from ..metrics.base import EvalItem, Metric
from ..metrics.registry import DEFAULT_METRICS, build_metrics, ground_truth_metrics
from ..models import bundled_weights, resolve_device, resolve_dtype
from ..personalizations import Personalization
from ..plugins import named_model
from ..settings import Given, resolve
from .pairs import BenchPair, read_pairs
from .report import write_report
from .store import (
    adapter_path,
    image_path,
    prepare_output,
    read_record,
    read_results,
    remember_metrics,
    settings_conflict,
    stored_settings,
    write_record,
    write_results,
)

if TYPE_CHECKING:
    import torch

    from ..families.base import Family

Key = tuple[str, str, int]  # (pair id, method, seed): one image


@dataclass(frozen=True)
class MethodSetup:
    """A method (resolved once, here) with the settings it runs with (its fixed settings applied)."""

    method: Method
    finetune: FinetuneConfig
    sampling: SamplingConfig

    @property
    def name(self) -> str:
        return self.method.name

    @classmethod
    def of(
        cls,
        method: Method | str,
        finetune: Given = None,
        sampling: Given = None,
        family: Family | None = None,
    ) -> MethodSetup:
        """``method`` (an object, or a name to look up) with its settings resolved on ``family`` from the
        user's (``imposter.settings.resolve``: settings named by flags, or whole configs; None: none given)."""
        method = get_method(method) if isinstance(method, str) else method
        return cls(method, *resolve(method, family, finetune, sampling))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {"finetune": asdict(self.finetune), "sampling": asdict(self.sampling)}


@dataclass(frozen=True)
class MetricModels:
    """Which model each metric loads (None: the metric's default, the authors'; SSCD has none)."""

    clip_model: str | None = None
    dino_model: str | None = None
    dino_variant: str = "authors"
    sscd_model: str | None = None

    def settings(self, name: str) -> dict[str, Any]:
        """What the scores of metric ``name`` depend on: the model it loads ({} for a model-free one)."""
        return {
            "clip": {"model": self.clip_model},
            "dino": {"model": self.dino_model, "variant": self.dino_variant},
            "sscd": {"model": self.sscd_model},
        }.get(name, {})

    def load(
        self, names: Sequence[str], device: str | torch.device, log: Callable[[str], object]
    ) -> dict[str, Metric]:
        """The named metrics that can be loaded, by name; ``log`` says why one cannot."""
        loaded = {}
        for name in dict.fromkeys(names):
            built = build_metrics(
                [name],
                device,
                clip_model=self.clip_model,
                dino_model=self.dino_model,
                dino_variant=self.dino_variant,
                sscd_model=self.sscd_model,
                log=log,
            )
            if built:
                loaded[name] = built[0]
        return loaded


@dataclass(frozen=True)
class BenchConfig:
    """Everything a bench run needs; ``settings`` is what must match for a folder to be resumed."""

    pairs: str
    methods: tuple[MethodSetup, ...]
    seeds: tuple[int, ...] = (0,)
    model: str = "toy"
    device: str | None = None  # None: cuda if available
    dtype: str | None = None  # None: bf16/fp16 on GPU, fp32 on CPU
    fit: str = "pad"
    height: int | None = None  # None: the model's native size
    width: int | None = None
    # None: DEFAULT_METRICS, plus ground truth when pairs have targets; on a named model, its own defaults
    metrics: tuple[str, ...] | None = None
    clip_model: str | None = None
    dino_model: str | None = None
    dino_variant: str = "authors"
    sscd_model: str | None = None

    def validate(self) -> BenchConfig:
        """ConfigError on an empty or repeated method or seed list, or an unknown --fit; return self."""
        names = [setup.name for setup in self.methods]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"$methods needs one or more distinct methods, got {names}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"$seeds needs one or more distinct seeds, got {list(self.seeds)}")
        if self.fit not in FITS:
            raise ConfigError(f"$fit must be one of {FITS}, got {self.fit!r}")
        return self

    def metric_names(self, pairs: Sequence[BenchPair]) -> tuple[str, ...]:
        """The metrics to score with: those asked for; on a named model with defaults of its own, those (the
        bundled toy models: toy ground truth and the phase score); otherwise the paper's. Ground-truth
        metrics only where the pairs have targets."""
        if self.metrics is not None:
            return tuple(self.metrics)
        truth = ground_truth_metrics()
        has_targets = any(pair.target_image for pair in pairs)
        named = named_model(self.model)
        if named is not None and named.default_metrics is not None:
            return tuple(name for name in named.default_metrics if has_targets or name not in truth)
        return DEFAULT_METRICS + (truth if has_targets else ())

    @property
    def metric_models(self) -> MetricModels:
        """Which model each metric loads."""
        return MetricModels(self.clip_model, self.dino_model, self.dino_variant, self.sscd_model)

    def settings(self, pairs: Sequence[BenchPair]) -> dict[str, Any]:
        """The settings records depend on (not the device, the seeds or the process count)."""
        return {
            "pairs": str(Path(self.pairs).expanduser().resolve()),
            "model": self.model,
            "model_weights": bundled_weights(self.model),  # a retrained toy model is another model
            "dtype": str(resolve_dtype(self.dtype, resolve_device(self.device))).removeprefix("torch."),
            "fit": self.fit,
            "height": self.height,
            "width": self.width,
            "metrics": {name: self.metric_models.settings(name) for name in self.metric_names(pairs)},
            "methods": {setup.name: setup.to_dict() for setup in self.methods},
            "seeds": list(self.seeds),
        }


@dataclass(frozen=True)
class Group:
    """Methods that sample from one fine-tune; ``folder`` names it under ``adapters/<pair>/``."""

    folder: str
    finetune: FinetuneConfig
    methods: tuple[MethodSetup, ...]


def personalization_groups(setups: Sequence[MethodSetup]) -> list[Group]:
    """Group methods by personalization key and fine-tune settings, in the order given."""
    members: dict[str, list[MethodSetup]] = {}
    for setup in setups:
        key = setup.method.personalization_key
        digest = hashlib.sha1(json.dumps(asdict(setup.finetune), sort_keys=True).encode()).hexdigest()[:8]
        members.setdefault(f"{key}-{digest}", []).append(setup)
    return [Group(folder, group[0].finetune, tuple(group)) for folder, group in members.items()]


def seed_batches(seeds: Sequence[int], batch_size: int | None) -> list[tuple[int, ...]]:
    """The seeds in the batches they are denoised in (None: all in one batch).

    A batch is redone whole when any of its seeds is missing, so that every image is made in the same
    company whether or not the run was interrupted (batched kernels may round differently).
    """
    size = batch_size or len(seeds)
    return [tuple(seeds[start : start + size]) for start in range(0, len(seeds), size)]


def expected_keys(pairs: Sequence[BenchPair], config: BenchConfig) -> list[Key]:
    """Every image of the bench, in report order: pairs as in the CSV, methods and seeds as given."""
    return [(p.pair_id, m.name, seed) for p in pairs for m in config.methods for seed in config.seeds]


def run_bench(
    config: BenchConfig,
    out: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    merge: bool = True,
    engine: ImPoster | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], object] = tqdm.write,
) -> list[dict[str, Any]]:
    """Make and score the images of this process's pairs (``pairs[index::count]``) that are not done.

    Saved images whose records lack a requested metric are scored with it, if it loads (without
    loading the diffusion model when no image is missing). With ``merge`` it then writes
    ``results.jsonl`` and the report from every record of the bench, and returns the records in
    report order.
    """
    out = Path(out)
    config.validate()
    pairs = read_pairs(config.pairs)  # a malformed CSV fails here, before any model loads
    prepare_output(out, config.settings(pairs), overwrite)
    keys = expected_keys(pairs, config)
    records = {key: read_record(out, *key) for key in keys}
    index, count = shard
    mine = pairs[index::count]
    my_keys = expected_keys(mine, config)
    todo = {key for key in my_keys if records[key] is None}
    names = config.metric_names(pairs)
    unscored = [key for key in my_keys if records[key] is not None and _lacks(records[key], names)]
    done = len(my_keys) - len(todo)
    if done and todo:
        log(f"resuming: {done} of {done + len(todo)} images already done")
    if todo or unscored:
        session = _Session(config, out, records, todo, log)
        session.start(engine, names)
        unscored = [key for key in unscored if _lacks(records[key], session.metrics)]
        if unscored:
            log(f"scoring {len(unscored)} saved images with the metrics their records lack")
        label = f"bench {index + 1}/{count}" if count > 1 else "bench"
        total = len(todo) + len(unscored)
        with tqdm(total=total, desc=label, unit="image", position=index, disable=not progress) as bar:
            session.bar = bar
            for pair in mine:
                saved = [records[key] for key in unscored if key[0] == pair.pair_id]
                if not saved and not any(key[0] == pair.pair_id for key in todo):
                    continue
                if saved:
                    for record in score_saved(out, saved, session.metrics):
                        records[_key(record)] = record
                        bar.update(1)
                if any(key[0] == pair.pair_id for key in todo):
                    session.run_pair(pair)
                if merge:  # keep results.jsonl current, so a long run can be looked at midway
                    write_results(out, [records[key] for key in keys if records[key] is not None])
    if not merge:
        return []
    ordered = [records[key] for key in keys if records[key] is not None]
    write_results(out, ordered)
    write_report(out, ordered, log=log)
    return ordered


def rescore_bench(
    out: str | Path,
    names: Sequence[str],
    models: MetricModels = MetricModels(),
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
    out = Path(out)
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
    position = {_key(record): i for i, record in enumerate(records)}
    unscored = [record for record in records if _lacks(record, metrics)]
    with tqdm(total=len(unscored), desc="rescore", unit="image", disable=not progress) as bar:
        for record in score_saved(out, unscored, metrics):
            records[position[_key(record)]] = record
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
                _saved_image(out / record["image"]),
                source,
                driving,
                record["settings"]["target_prompt"],
                target,
            )
            for record in pair_records
        ]
        scores: list[dict[str, float]] = [{} for _ in pair_records]
        for name, metric in metrics.items():
            chosen = [i for i, record in enumerate(pair_records) if _lacks(record, [name])]
            for i, values in zip(chosen, metric.score_available([items[i] for i in chosen]), strict=True):
                scores[i].update(values)
        for record, values in zip(pair_records, scores, strict=True):
            ran = [name for name in metrics if _lacks(record, [name])]
            if not ran:
                continue
            updated = {
                **record,
                "metrics": {**record["metrics"], **values},
                "metrics_run": sorted({*record.get("metrics_run", ()), *ran}),
            }
            write_record(out, updated)
            yield updated


def _saved_image(path: Path) -> Image.Image:
    """A generated image as saved (not an input: no minimum size, no conversion warnings)."""
    with Image.open(path) as saved:
        return saved.convert("RGB")


def _lacks(record: Mapping[str, Any], names: Iterable[str]) -> bool:
    """Whether some of ``names`` has not scored the record's image (records before metrics_run: none has)."""
    return not set(names) <= set(record.get("metrics_run", ()))


def _key(record: Mapping[str, Any]) -> Key:
    return (record["pair_id"], record["method"], record["seed"])


@dataclass
class _LoadedPair:
    """A pair ready to run: its CSV row, its model inputs, and the original images metrics compare with."""

    row: BenchPair
    prepared: PreparedPair
    source: Image.Image
    driving: Image.Image
    target: Image.Image | None

    def eval_items(self, images: Sequence[Image.Image]) -> list[EvalItem]:
        """What the metrics judge: each generated image against the original source, driving, target."""
        return [
            EvalItem(image, self.source, self.driving, self.prepared.target_prompt, self.target)
            for image in images
        ]


@dataclass
class _Session:
    """One process's work on its pairs: the model, the metrics, and the records it fills in."""

    config: BenchConfig
    out: Path
    records: dict[Key, dict[str, Any] | None]
    todo: set[Key]
    log: Callable[[str], object]
    engine: ImPoster | None = None
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    bar: tqdm | None = None

    def start(self, engine: ImPoster | None, metric_names: Sequence[str]) -> None:
        """Load the model (unless given, or no image is missing) and the metrics that can be loaded."""
        config = self.config
        if engine is None and self.todo:
            engine = ImPoster.from_pretrained(config.model, config.device, config.dtype)
        if engine is not None:  # a method that cannot run on this model stops the bench before any work
            for setup in config.methods:
                setup.method.check_model(engine)
        self.engine = engine
        device = engine.device if engine is not None else resolve_device(config.device)
        self.metrics = config.metric_models.load(metric_names, device, self.log)
        remember_metrics(self.out, {name: config.metric_models.settings(name) for name in self.metrics})

    def run_pair(self, row: BenchPair) -> None:
        """Every missing image of one pair: one fine-tune per group, then each method's missing batches."""
        config = self.config
        source, driving = load_image(row.source_image, "source"), load_image(row.driving_image, "driving")
        prepared = self.engine.prepare(
            source,
            row.source_prompt,
            driving,
            row.driving_prompt,
            row.target_prompt,
            fit=config.fit,
            height=config.height,
            width=config.width,
            driving_pose_map=row.driving_pose_map,
            target_pose_map=row.target_pose_map,
        )
        target = load_image(row.target_image, "target") if row.target_image else None
        pair = _LoadedPair(row, prepared, source, driving, target)
        for group in personalization_groups(config.methods):
            missing = {setup: self.missing_seeds(row, setup) for setup in group.methods}
            if any(missing.values()):
                folder = adapter_path(self.out, row.pair_id, group.folder)
                learned = self.personalization(prepared, group, folder)
                for setup, seeds in missing.items():
                    if seeds:
                        self.sample(pair, learned, folder, setup, seeds)

    def missing_seeds(self, row: BenchPair, setup: MethodSetup) -> list[int]:
        """The seeds of every batch that lacks an image: whole batches, as an uninterrupted run makes them."""
        return [
            seed
            for batch in seed_batches(self.config.seeds, setup.sampling.batch_size)
            if any((row.pair_id, setup.name, seed) in self.todo for seed in batch)
            for seed in batch
        ]

    def personalization(self, prepared: PreparedPair, group: Group, folder: Path) -> Personalization:
        """The group's fine-tune for this pair: read back from ``folder``, or learned and saved there."""
        method = group.methods[0].method
        if folder.is_dir():
            self.log(f"reusing the fine-tune in {folder}")
            return self.engine.load_personalization(folder, method)
        learned = self.engine.learn(prepared, method, group.finetune, progress=False)
        with atomic_directory(folder) as temporary:
            learned.save(temporary)
        return learned

    def sample(
        self,
        pair: _LoadedPair,
        learned: Personalization,
        folder: Path,
        setup: MethodSetup,
        seeds: Sequence[int],
    ) -> None:
        """Generate and score ``seeds`` with one method; write each new image, then its record."""
        start = time.perf_counter()
        # whole batches, so that sample_batches cuts them exactly as an uninterrupted run does
        for batch in self.engine.sample_batches(
            pair.prepared, learned, seeds, setup.sampling, setup.method, progress=False
        ):
            generated = time.perf_counter()
            scores = _score(self.metrics.values(), pair.eval_items([image for _, image in batch]))
            timings = {
                "personalize": learned.info.get("seconds"),
                "generate_per_image": round((generated - start) / len(batch), 4),
                "score_per_image": round((time.perf_counter() - generated) / len(batch), 4),
            }
            for (seed, image), scored in zip(batch, scores, strict=True):
                key = (pair.row.pair_id, setup.name, seed)
                if self.records[key] is not None:
                    continue  # made before an interruption; its batch was redone for the others' sake
                save_image(image, image_path(self.out, *key))
                self.records[key] = self.record(pair, setup, seed, folder, timings, scored)
                write_record(self.out, self.records[key])
                self.todo.discard(key)
                self.bar.update(1)
            start = time.perf_counter()

    def record(
        self,
        pair: _LoadedPair,
        setup: MethodSetup,
        seed: int,
        folder: Path,
        timings: dict[str, Any],
        metrics: dict[str, float],
    ) -> dict[str, Any]:
        """One image's line of results.jsonl: what it is, how it was made, how long it took, its scores."""
        width, height = pair.prepared.size
        return {
            "pair_id": pair.row.pair_id,
            "method": setup.name,
            "seed": seed,
            "image": image_path(self.out, pair.row.pair_id, setup.name, seed)
            .relative_to(self.out)
            .as_posix(),
            "pair": pair.row.to_dict(),
            "settings": {
                "model": self.config.model,
                "dtype": str(self.engine.dtype).removeprefix("torch."),
                "fit": self.config.fit,
                "width": width,
                "height": height,
                "target_prompt": pair.prepared.target_prompt,
                "adapter": folder.relative_to(self.out).as_posix(),
                **setup.to_dict(),
            },
            "timings": timings,
            "metrics": metrics,
            "metrics_run": sorted(self.metrics),
        }


def _score(metrics: Iterable[Metric], items: Sequence[EvalItem]) -> list[dict[str, float]]:
    """Every metric's numbers for each item; a metric that cannot judge an item leaves it out."""
    scores: list[dict[str, float]] = [{} for _ in items]
    for metric in metrics:
        for scored, values in zip(scores, metric.score_available(items), strict=True):
            scored.update(values)
    return scores
