"""The ``bench`` job: several methods on every pair and seed of a pairs CSV, scored and reported.

For each pair, the requested methods are grouped by what they learn: methods with the same
fine-tune kind and the same resolved fine-tune settings (ImPoster, Baseline++ and the
ablations) share one fine-tune, which then samples every method of the group and every seed. Each
image is scored as soon as it exists and gets a record file (see :mod:`imposter.bench.store`); a
record that exists is never redone, so the same command, run again after a kill, carries on. A
record lists the metrics that scored it; a requested metric it lacks (its model could not be loaded
then) is scored from the saved image on the next run, and :func:`imposter.bench.scoring.rescore_bench` adds metrics to a
finished bench. Neither regenerates an image.

``run_bench(shard=(i, n))`` does only pairs ``i::n`` (in CSV order); :mod:`imposter.bench.launch`
runs the shares in several processes and merges them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from tqdm.auto import tqdm

from ..engine import ImPoster, PreparedPair
from ..fileio import atomic_directory, save_image
from ..images import load_image
from ..metrics.base import EvalItem, Metric
from ..models import resolve_device
from ..personalizations import Personalization
from .config import BenchConfig, Group, Key, MethodSetup, expected_keys, personalization_groups, seed_batches
from .pairs import BenchPair, read_pairs
from .report import write_report
from .scoring import lacks, record_key, score_saved
from .store import (
    adapter_path,
    image_path,
    prepare_output,
    read_record,
    remember_metrics,
    write_record,
    write_results,
)

if TYPE_CHECKING:
    pass


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
    unscored = [key for key in my_keys if records[key] is not None and lacks(records[key], names)]
    done = len(my_keys) - len(todo)
    if done and todo:
        log(f"resuming: {done} of {done + len(todo)} images already done")
    if todo or unscored:
        session = _Session(config, out, records, todo, log)
        session.start(engine, names)
        unscored = [key for key in unscored if lacks(records[key], session.metrics)]
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
                        records[record_key(record)] = record
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
            source_keypoints=self.keypoints(row.source_keypoints, source, "source"),
            driving_keypoints=self.keypoints(row.driving_keypoints, driving, "driving"),
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

    def keypoints(self, given: Path | None, image, role: str):
        """A pair's keypoints when a method of the bench reads them (imposter): the CSV's file, else
        detected by ``detect_pose``; None when no method reads them."""
        if not any(setup.method.needs_keypoints for setup in self.config.methods):
            return None  # no method reads them: no warp per pair
        from ..pose_detection import given_or_detected, model_detector

        detector = model_detector(self.config.model, self.config.detect_pose)
        return given_or_detected(given, image, detector, role, self.log)

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
