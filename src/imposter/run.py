"""The ``generate`` job: personalize once, generate every seed, write a resumable run folder.

    OUT/seed_0.png ...   one image per seed
    OUT/grid.png         source | driving | results
    OUT/config.json      every setting, the package versions, timings
    OUT/adapter/         what the method learned (LoRA: loadable by pipe.load_lora_weights)

Run again with the same settings, it reuses the adapter and skips the seeds already written; with
other settings it refuses (so nothing is overwritten) unless ``overwrite`` is set.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from . import __version__
from .config import RunConfig
from .engine import ImPoster, distinct_seeds
from .errors import ConfigError
from .fileio import atomic_directory, save_image, write_json
from .images import image_grid, load_image
from .methods import get_method
from .methods.base import Method
from .personalizations import Personalization
from .prepared import PreparedPair
from .settings import resolve

# a run configuration (RunConfig, AnimateConfig): a dataclass with the fields resolved() and settled() set
C = TypeVar("C")

CONFIG_FILE = "config.json"
ADAPTER_DIR = "adapter"


def environment() -> dict[str, str]:
    """Versions that decide the numbers: ours, Python, torch, diffusers, transformers, peft."""
    import diffusers
    import peft
    import torch
    import transformers

    return {
        "imposter": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def seed_image_name(seed: int) -> str:
    """File name of a seed's image in a run folder."""
    return f"seed_{seed}.png"


@dataclass
class RunResult:
    """Where a run's outputs are, and what it did."""

    out: Path
    images: dict[int, Path]
    grid: Path
    target_prompt: str
    reused_adapter: bool
    timings: dict[str, float] = field(default_factory=dict)


def _comparable(run: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that must match for a folder to be resumed (all but the seeds), as JSON sees them."""
    return json.loads(json.dumps({k: v for k, v in run.items() if k != "seeds"}, default=str))


def previous_run(out: Path, run: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The earlier run in ``out`` with the same settings (but the seeds), or None; ConfigError if it differs."""
    config_file = out / CONFIG_FILE
    if not config_file.exists():
        return None
    previous = json.loads(config_file.read_text())
    if _comparable(previous.get("run", {})) == _comparable(run):
        return previous
    if overwrite:
        return None
    raise ConfigError(
        f"{out} holds a run with other settings; choose another $out, or pass $overwrite to replace it"
    )


def open_run_folder(out: Path, run: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The earlier run in ``out`` to resume (None: start afresh, clearing ``out`` if ``overwrite``); marks it running."""
    previous = previous_run(out, run, overwrite)
    if previous is None and out.exists() and overwrite:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG_FILE, {"run": run, "environment": environment(), "status": "running"})
    return previous


def load_or_personalize(
    engine: ImPoster,
    pair: PreparedPair,
    method: Method,
    config: RunConfig | Any,
    out: Path,
    resuming: bool,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[Personalization, bool]:
    """``config.adapter`` if given, the run folder's own (when resuming), or a fresh fine-tune with
    ``config.finetune`` saved to ``out/adapter``.

    Returns the personalization and whether the run folder's adapter was reused.
    """
    adapter, adapter_dir = config.adapter, out / ADAPTER_DIR
    if adapter:
        log(f"loaded adapter from {adapter}; skipping fine-tuning")
        return engine.load_personalization(adapter, method), False
    if resuming and adapter_dir.is_dir():
        log(f"resuming: reusing the adapter in {adapter_dir}")
        return engine.load_personalization(adapter_dir, method), True
    learned = engine.learn(pair, method, config.finetune, progress=progress)
    with atomic_directory(adapter_dir) as temporary:
        learned.save(temporary)
    return learned, False


def resolved(config: C, engine: ImPoster, method: Method) -> C:
    """``config`` with the settings ``method`` runs with on the engine's model (``imposter.settings.resolve``
    of the user's), once checked that it runs there: the one place a job looks its settings up. A method that
    reads keypoints gets the model's own detector (the toy world's) where the user named none, written with
    the run like every other setting."""
    from .pose_detection import model_detector

    finetune, sampling = resolve(method, engine.family, config.finetune, config.sampling)
    method.check_model(engine)
    detect_pose = config.detect_pose
    if method.needs_keypoints:
        detect_pose = model_detector(config.model, detect_pose)
    return replace(config, finetune=finetune, sampling=sampling, detect_pose=detect_pose)


def settled(config: C, pair: PreparedPair, engine: ImPoster, log: Callable[[str], None], **more: Any) -> C:
    """``config`` with what the run settled on (target prompt, image size, device, dtype), for config.json.

    Says so when the target prompt was composed from the captions rather than given.
    """
    if not config.target_prompt:
        log(
            f"target prompt: {pair.target_prompt!r} (composed from the captions; set it with --target-prompt)"
        )
    return replace(
        config,
        target_prompt=pair.target_prompt,
        height=pair.size[1],
        width=pair.size[0],
        device=str(engine.device),
        dtype=str(engine.dtype).removeprefix("torch."),
        **more,
    )


def pose_map(config: RunConfig, driving: Image.Image, log: Callable[[str], None]) -> Image.Image | None:
    """The driving pose map of a run: the user's file, or one made by ``config.detect_pose`` (None: neither)."""
    if config.driving_pose_map:
        return load_image(config.driving_pose_map, "driving pose map")
    if config.detect_pose and get_method(config.method).needs_pose_map:
        from .controlnet import detect_pose

        log(f"driving pose map: detected ({config.detect_pose})")
        return detect_pose(driving, config.detect_pose)
    return None


def keypoints(config: RunConfig, role: str, image: Image.Image, log: Callable[[str], None]) -> Any:
    """One image's body keypoints when the method reads them (imposter): the user's OpenPose JSON, or
    detected by ``config.detect_pose`` (None: neither, or a method that reads none)."""
    if not get_method(config.method).needs_keypoints:  # no warp for a method that never reads it
        return None
    from .pose_detection import given_or_detected

    return given_or_detected(getattr(config, f"{role}_keypoints"), image, config.detect_pose, role, log)


class Job:
    """What a kind of run folder does its own way; ``run_job`` does the rest, the same for every job.

    ``run_job``: load the model, resolve the settings, ``prepare``, open (or resume) the folder, personalize,
    make the ``outputs`` not written yet from ``sampling_inputs``, ``finish``, write config.json.
    """

    item = "image"  # what one output is called in the log: "seed", "frame"
    per_item = "generate_per_image"  # the timing of one output

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def load_model(self, config: Any, engine: ImPoster | None) -> ImPoster:
        """``engine``, or the config's model loaded."""
        return engine or ImPoster.from_pretrained(config.model, config.device, config.dtype)

    def prepare(self, engine: ImPoster, config: C, log: Callable[[str], None]) -> tuple[C, dict[str, Any]]:
        """Fit the inputs to the model: ``config`` with what the run settled on, and the settings a resumed
        folder must match (config.json's "run")."""
        raise NotImplementedError

    def learning_pair(self) -> PreparedPair:
        """The pair the method personalizes on."""
        raise NotImplementedError

    def outputs(self, out: Path, config: Any) -> dict[int, Path]:
        """Each output's file by its key (a seed, a frame index), in the order of the results."""
        raise NotImplementedError

    def sampling_inputs(self, config: Any, todo: list[int]) -> tuple[PreparedPair, list[int]]:
        """The pair and the seeds that make the outputs ``todo`` (see ``ImPoster.sample_batches``)."""
        raise NotImplementedError

    def finish(self, out: Path, config: Any, outputs: dict[int, Path], log: Callable[[str], None]) -> dict:
        """Write what is made of the outputs (a grid, an animation); what config.json adds about the run."""
        raise NotImplementedError


@dataclass
class JobRun:
    """What ``run_job`` did: the settled config, the outputs by key, and whether the adapter was reused."""

    config: Any
    outputs: dict[int, Path]
    reused_adapter: bool
    timings: dict[str, float]


def run_job(
    job: Job,
    config: Any,
    out: Path,
    engine: ImPoster | None,
    overwrite: bool,
    progress: bool,
    log: Callable[[str], None],
    method: Method,
) -> JobRun:
    """The skeleton of every job (see ``Job``): one run folder, resumable, written as it goes."""
    timings = job.timings
    start = time.perf_counter()
    engine = job.load_model(config, engine)
    timings["load_model"] = time.perf_counter() - start
    config, run = job.prepare(engine, resolved(config, engine, method), log)
    method.check_pair(job.learning_pair())  # a missing input fails before the folder or any fine-tune
    previous = open_run_folder(out, run, overwrite)
    start = time.perf_counter()
    learned, reused = load_or_personalize(
        engine, job.learning_pair(), method, config, out, previous is not None, progress, log
    )
    timings["personalize"] = time.perf_counter() - start

    outputs = job.outputs(out, config)
    todo = [key for key, path in outputs.items() if previous is None or not path.exists()]
    if len(todo) < len(outputs):
        log(f"resuming: {len(outputs) - len(todo)} of {len(outputs)} {job.item}s already written")
    start = time.perf_counter()
    pair, seeds = job.sampling_inputs(config, todo)
    batches = engine.sample_batches(pair, learned, seeds, config.sampling, method, progress=progress)
    images = (image for batch in batches for _, image in batch)
    for key, image in zip(todo, images, strict=True):
        save_image(image, outputs[key])
    timings["generate"] = time.perf_counter() - start
    timings[job.per_item] = timings["generate"] / len(todo) if todo else 0.0

    more = job.finish(out, config, outputs, log)
    timings = {k: round(v, 3) for k, v in timings.items()}
    done = {"run": run, "environment": environment(), "status": "done", "timings": timings}
    write_json(out / CONFIG_FILE, done | more | {"personalization": learned.info})
    return JobRun(config, outputs, reused, timings)


class GenerateJob(Job):
    """``generate``: one image per seed, and the grid source | driving | results."""

    item = "seed"

    def __init__(self, config: RunConfig):
        super().__init__()
        # read before the model loads, so that a wrong path fails at once
        self.source = load_image(config.source, "source")
        self.driving = load_image(config.driving, "driving")

    def load_model(self, config: RunConfig, engine: ImPoster | None) -> ImPoster:
        engine = engine or ImPoster.from_pretrained(config.model, config.device, config.dtype, config.offload)
        if config.controlnet:
            engine.load_controlnet(config.controlnet)
        return engine

    def prepare(
        self, engine: ImPoster, config: RunConfig, log: Callable[[str], None]
    ) -> tuple[RunConfig, dict]:
        self.pair = engine.prepare(
            self.source,
            config.source_prompt,
            self.driving,
            config.driving_prompt,
            config.target_prompt or None,
            fit=config.fit,
            height=config.height,
            width=config.width,
            driving_pose_map=pose_map(config, self.driving, log),
            source_keypoints=keypoints(config, "source", self.source, log),
            driving_keypoints=keypoints(config, "driving", self.driving, log),
            source_mask=config.source_mask,
            driving_mask=config.driving_mask,
        )
        config = settled(config, self.pair, engine, log)
        return config, config.to_dict()

    def learning_pair(self) -> PreparedPair:
        return self.pair

    def outputs(self, out: Path, config: RunConfig) -> dict[int, Path]:
        return {seed: out / seed_image_name(seed) for seed in distinct_seeds(config.seeds)}

    def sampling_inputs(self, config: RunConfig, todo: list[int]) -> tuple[PreparedPair, list[int]]:
        return self.pair, todo

    def finish(
        self, out: Path, config: RunConfig, outputs: dict[int, Path], log: Callable[[str], None]
    ) -> dict:
        results = [Image.open(path).convert("RGB") for path in outputs.values()]
        self.grid = save_image(
            image_grid(
                [[self.pair.source_image, self.pair.driving_image, *results]],
                ["source", "driving", *map(str, outputs)],
            ),
            out / "grid.png",
        )
        return {}


def run_generate(
    config: RunConfig,
    out: str | Path,
    engine: ImPoster | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    method: Method | None = None,
) -> RunResult:
    """Run ``config`` into ``out``: fine-tune (or load/reuse the adapter), generate, write everything.

    ``config.finetune`` and ``config.sampling`` are the user's (see ``RunConfig``); ``method``: the
    ``config.method`` object if the caller has it (None: looked up here).
    """
    method = method or get_method(config.method)
    job = GenerateJob(config)
    ran = run_job(job, config, Path(out), engine, overwrite, progress, log, method)
    return RunResult(
        Path(out), ran.outputs, job.grid, job.pair.target_prompt, ran.reused_adapter, ran.timings
    )
