"""What the page does: each handler turns the page's values into one library call, and its result into outputs.

The jobs are the CLI's own (``run_generate``, ``run_animate``), so a page run writes the same folder as
``imposter generate``: images, grid, ``config.json``, adapter. Library errors become one-line page
errors that name the field a user sees ("Source caption is empty"), never a flag or a traceback.

Personalize once, tune live: a fine-tune is stored under a hash of what it learned from (the uploaded
files, the captions, the model, the method's kind of personalization and the fine-tuning settings) and
indexed in memory for the session, so changing only sampling settings (K, scales, seeds, a method that
shares the fine-tune) never fine-tunes again. The jobs take adapter folders, so its weights are read
back from disk for each run (milliseconds for a LoRA).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr

from ..config import RunConfig
from ..engine import ImPoster
from ..errors import ImposterError
from ..fileio import atomic_directory
from ..images import load_image
from ..methods import get_method
from ..methods.base import Method
from ..personalizations import METADATA_FILE
from ..prompts import check_caption, compose_target_prompt
from ..run import ADAPTER_DIR, CONFIG_FILE, run_generate
from ..settings import resolve
from ..video.animate import AnimateConfig, run_animate

# The page's labels: tests and users find the fields by them.
SOURCE_IMAGE = "Source image"
SOURCE_CAPTION = "Source caption"
DRIVING_IMAGE = "Driving image"
DRIVING_FRAMES = "Driving video or frames"
DRIVING_CAPTION = "Driving caption"
TARGET_CAPTION = "Target caption"
METHOD = "Method"
FINETUNE_STEPS = "Fine-tuning steps"
STEPS = "Denoising steps"
K = "K"
AMP_SCALE = "Amplitude scale"
PHASE_SCALE = "Phase scale"
GUIDANCE_SCALE = "Guidance scale"
SEEDS = "Seeds"
SEED = "Seed"
EVERY = "Every Nth frame"
MAX_FRAMES = "Max frames (0: all)"

# The sampling fields of the page -> SamplingConfig fields (the fine-tuning steps are FinetuneConfig.steps).
SAMPLING_FIELDS = {
    STEPS: "steps",
    K: "k",
    AMP_SCALE: "amp_scale",
    PHASE_SCALE: "phase_scale",
    GUIDANCE_SCALE: "guidance_scale",
}
# The CLI's flag -> the page's field, so that a library error names what the user sees.
FIELD_OF_FLAG = {
    "--source": SOURCE_IMAGE,
    "--driving": DRIVING_IMAGE,
    "--source-prompt": SOURCE_CAPTION,
    "--driving-prompt": DRIVING_CAPTION,
    "--target-prompt": TARGET_CAPTION,
    "--method": METHOD,
    "--train-steps": FINETUNE_STEPS,
    "--steps": STEPS,
    "--k": K,
    "--amp-scale": AMP_SCALE,
    "--phase-scale": PHASE_SCALE,
    "--guidance-scale": GUIDANCE_SCALE,
    "--seeds": SEEDS,
    "--every": EVERY,
    "--max-frames": MAX_FRAMES,
}
FLAG = re.compile(r"--[a-z][a-z-]*")


def page_error(err: ImposterError, fields: Mapping[str, str] = FIELD_OF_FLAG) -> gr.Error:
    """The library's one-line message with every flag replaced by the page field it stands for."""
    message = FLAG.sub(lambda match: fields.get(match.group(), match.group()), str(err))
    return gr.Error(" ".join(message.split()), print_exception=False)


@contextlib.contextmanager
def page_errors(fields: Mapping[str, str] = FIELD_OF_FLAG) -> Iterator[None]:
    """Library errors as page errors, and the library's warnings (a converted image...) as page warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        except ImposterError as err:
            raise page_error(err, fields) from err
        finally:
            for warning in caught:
                if issubclass(warning.category, UserWarning):
                    gr.Warning(FLAG.sub(lambda m: fields.get(m.group(), m.group()), str(warning.message)))


def family_methods(engine: ImPoster, names: Sequence[str]) -> list[str]:
    """The methods among ``names`` that run on ``engine``'s model family (SD, SDXL, FLUX.1)."""
    return [name for name in names if engine.family.name in get_method(name).families]


def required(value: Any, label: str) -> Any:
    """``value``, or a page error saying the field ``label`` is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise gr.Error(f"{label} is empty; fill it in", print_exception=False)
    return value


def parse_seeds(text: str, label: str = SEEDS) -> list[int]:
    """ "0 1 2" or "0, 1, 2" -> [0, 1, 2]; a page error naming the field otherwise."""
    words = str(required(text, label)).replace(",", " ").split()
    try:
        return [int(word) for word in words]
    except ValueError:
        raise gr.Error(
            f"{label} must be whole numbers separated by spaces, e.g. 0 1 2; got {text!r}",
            print_exception=False,
        ) from None


def captions(source_caption: str, driving_caption: str, target_caption: str) -> tuple[str, str, str]:
    """The three captions checked; a blank target caption is composed from the other two."""
    source = check_caption(source_caption, "--source-prompt")
    driving = check_caption(driving_caption, "--driving-prompt")
    if target_caption and target_caption.strip():
        return source, driving, check_caption(target_caption, "--target-prompt")
    return source, driving, compose_target_prompt(source, driving)


def digest(data: Any) -> str:
    """A short SHA-256 of ``data`` as JSON (key order ignored)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FinetuneCache:
    """Fine-tuned adapter folders by key: stored as ``folder/KEY`` (found by later sessions), indexed in memory."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.adapters: dict[str, Path] = {}

    def get(self, key: str) -> Path | None:
        """The adapter folder stored under ``key``, or None."""
        if key not in self.adapters and (self.folder / key / METADATA_FILE).exists():
            self.adapters[key] = self.folder / key
        return self.adapters.get(key)

    def put(self, key: str, adapter: Path) -> Path:
        """Keep a copy of the adapter folder ``adapter`` under ``key``; return where it is."""
        with atomic_directory(self.folder / key) as temporary:
            shutil.copytree(adapter, temporary, dirs_exist_ok=True)
        self.adapters[key] = self.folder / key
        return self.adapters[key]


@dataclass
class Settings:
    """The method and the fine-tuning and sampling settings the page names (the job resolves the rest)."""

    method: Method
    finetune: dict[str, Any]
    sampling: dict[str, Any]


def page_settings(method_name: str, finetune_steps: Any, *sampling_values: Any) -> Settings:
    """The method and the page's values (the sampling values in SAMPLING_FIELDS' order)."""
    sampling = {
        field: required(value, label)
        for (label, field), value in zip(SAMPLING_FIELDS.items(), sampling_values, strict=True)
    }
    sampling["steps"], sampling["k"] = int(sampling["steps"]), int(sampling["k"])
    finetune = {"steps": int(required(finetune_steps, FINETUNE_STEPS))}
    return Settings(get_method(required(method_name, METHOD)), finetune, sampling)


class App:
    """The page's handlers around one loaded model; everything they write goes under ``out``."""

    def __init__(self, engine: ImPoster, out: str | Path):
        self.engine = engine
        self.out = Path(out)
        self.cache = FinetuneCache(self.out / "finetunes")

    # -- small, instant handlers (not queued) ----------------------------------------------------

    @staticmethod
    def compose(source_caption: str, driving_caption: str) -> Any:
        """The composed target caption, or no change while the captions cannot be composed yet."""
        try:
            return compose_target_prompt(source_caption, driving_caption)
        except ImposterError:
            return gr.update()

    @staticmethod
    def method_changed(method_name: str, previous_name: str) -> list[Any]:
        """The new method name (kept as the previous one), then an update per sampling field.

        Settings that define the new method (Baseline++: K = 0, no guidance) are shown and locked; a field
        the previous method had locked, or that either method has its own default for (imposter-paper's
        scales), gets the new method's default; the user's other values stay.
        """
        method, previous = get_method(method_name), get_method(previous_name or method_name)
        defaults = resolve(method, None)[1]
        updates = []
        for field in SAMPLING_FIELDS.values():
            if field in method.fixed_sampling:
                updates.append(gr.update(value=method.fixed_sampling[field], interactive=False))
            elif field in {*previous.fixed_sampling, *previous.sampling_defaults, *method.sampling_defaults}:
                updates.append(gr.update(value=getattr(defaults, field), interactive=True))
            else:
                updates.append(gr.update(interactive=True))
        return [method_name, *updates]

    # -- inputs ----------------------------------------------------------------------------------

    def keep_inputs(self, paths: Sequence[str | Path]) -> tuple[str, Path]:
        """Copy uploaded files under ``out/inputs/DIGEST/`` (in order: 0000, 0001...); the digest and folder.

        Runs then read stable paths, so that a run folder resumes whichever upload path Gradio gave.
        """
        contents = hashlib.sha256()
        for path in paths:
            contents.update(Path(path).read_bytes())
        key = contents.hexdigest()[:16]
        folder = self.out / "inputs" / key
        if not folder.is_dir():
            with atomic_directory(folder) as temporary:
                for index, path in enumerate(paths):
                    shutil.copyfile(path, temporary / f"{index:04d}{Path(path).suffix.lower()}")
        return key, folder

    def image_input(self, path: str | None, label: str) -> tuple[str, Path]:
        """Check an uploaded image with the library's loader and keep it; its digest and kept path."""
        required(path, label)
        try:
            load_image(path, label.removesuffix(" image"))
        except ImposterError as err:  # name the file, not Gradio's upload folder
            raise gr.Error(str(err).replace(str(path), Path(path).name), print_exception=False) from err
        key, folder = self.keep_inputs([path])
        return key, next(folder.iterdir())

    # -- jobs ------------------------------------------------------------------------------------

    def finetune_key(self, settings: Settings, learned_from: Mapping[str, Any]) -> str:
        """The cache key of a fine-tune: the model, the method's kind of personalization and the page's
        fine-tuning settings (which, with those two, decide the rest)."""
        return digest(
            {
                "model": self.engine.model,
                "dtype": str(self.engine.dtype),
                "personalization": settings.method.personalization_key,
                "finetune": settings.finetune,
                **learned_from,
            }
        )

    def run(
        self, job, config: Any, settings: Settings, learned_from: Mapping[str, Any], runs: str
    ) -> tuple[Any, list[str], str]:
        """Run ``job`` (``run_generate``, ``run_animate``) on ``config``, with the cached fine-tune if any.

        Each run goes to ``out/RUNS/KEY-SETTINGS``; a fresh fine-tune is cached, even when the job fails
        after it (a bad seed list...). Returns the job's result, the downloads and the status line.
        """
        key = self.finetune_key(settings, learned_from)
        run_settings = {k: v for k, v in config.to_dict().items() if k not in ("finetune", "seeds")}
        folder = self.out / runs / f"{key}-{digest(run_settings)}"
        adapter = self.cache.get(key)
        try:
            result = job(
                replace(config, adapter=str(adapter) if adapter else None),
                folder,
                engine=self.engine,
                overwrite=True,  # the folder is keyed by these settings: only a stale one is replaced
            )
        finally:
            if adapter is None and (folder / ADAPTER_DIR / METADATA_FILE).exists():
                self.cache.put(key, folder / ADAPTER_DIR)
        learned = self.cache.get(key)
        archives = [shutil.make_archive(str(folder / "adapter"), "zip", root_dir=learned)] if learned else []
        return result, [*archives, str(folder / CONFIG_FILE)], status(result, adapter is not None, key)

    def generate(
        self,
        source: str | None,
        source_caption: str,
        driving: str | None,
        driving_caption: str,
        target_caption: str,
        method_name: str,
        finetune_steps: int,
        steps: int,
        k: int,
        amp_scale: float,
        phase_scale: float,
        guidance_scale: float,
        seeds: str,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008  (Gradio's way to ask for a bar)
    ) -> tuple[list[tuple[str, str]], str, list[str], str]:
        """Fine-tune (or reuse the cached fine-tune) and generate: (gallery, grid, downloads, status)."""
        with page_errors():
            source_key, source_path = self.image_input(source, SOURCE_IMAGE)
            driving_key, driving_path = self.image_input(driving, DRIVING_IMAGE)
            source_caption, driving_caption, target = captions(
                source_caption, driving_caption, target_caption
            )
            settings = page_settings(
                method_name, finetune_steps, steps, k, amp_scale, phase_scale, guidance_scale
            )
            seed_list = parse_seeds(seeds)
            config = RunConfig(
                model=self.engine.model,
                method=settings.method.name,
                source=str(source_path),
                driving=str(driving_path),
                source_prompt=source_caption,
                driving_prompt=driving_caption,
                target_prompt=target,
                seeds=tuple(seed_list),
                finetune=settings.finetune,
                sampling=settings.sampling,
            )
            learned_from = {
                "images": [source_key, driving_key],
                "captions": [source_caption, driving_caption, target],
            }
            result, downloads, message = self.run(run_generate, config, settings, learned_from, "runs")
        gallery = [(str(path), f"seed {seed}") for seed, path in result.images.items()]
        return gallery, str(result.grid), downloads, message

    def animate(
        self,
        source: str | None,
        source_caption: str,
        driving: Sequence[str] | None,
        driving_caption: str,
        target_caption: str,
        method_name: str,
        finetune_steps: int,
        steps: int,
        k: int,
        amp_scale: float,
        phase_scale: float,
        guidance_scale: float,
        seed: int,
        every: int,
        max_frames: int | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008
    ) -> tuple[str, str, list[str], str]:
        """The animate job on a video or several frames: (GIF, strip, downloads, status)."""
        fields = {**FIELD_OF_FLAG, "--driving": DRIVING_FRAMES, "--seeds": SEED}
        with page_errors(fields):
            source_key, source_path = self.image_input(source, SOURCE_IMAGE)
            files = [str(path) for path in required(driving or None, DRIVING_FRAMES)]
            driving_key, driving_folder = self.keep_inputs(files)
            # one file (a video, a GIF) is read as it is; several are the frames, in upload order
            driving_path = next(driving_folder.iterdir()) if len(files) == 1 else driving_folder
            source_caption, driving_caption, target = captions(
                source_caption, driving_caption, target_caption
            )
            settings = page_settings(
                method_name, finetune_steps, steps, k, amp_scale, phase_scale, guidance_scale
            )
            config = AnimateConfig(
                model=self.engine.model,
                source=str(source_path),
                driving=str(driving_path),
                source_prompt=source_caption,
                driving_prompt=driving_caption,
                target_prompt=target,
                method=settings.method.name,
                seed=int(required(seed, SEED)),
                every=int(required(every, EVERY)),
                max_frames=int(max_frames) if max_frames else None,
                finetune=settings.finetune,
                sampling=settings.sampling,
            ).validate()
            learned_from = {
                "images": [source_key, driving_key],
                "captions": [source_caption, driving_caption, target],
                "frames": [config.every, config.max_frames, config.train_frames],
            }
            result, downloads, message = self.run(run_animate, config, settings, learned_from, "animations")
        return str(result.gif), str(result.strip), downloads, message


def status(result: Any, reused: bool, key: str) -> str:
    """What the run did, for the page: fine-tuned or reused, and how long each part took."""
    timings = result.timings
    if reused:
        learned = f"**Reused** the fine-tune `{key}`: no fine-tuning."
    else:
        learned = (
            f"**Fine-tuned** in {timings.get('personalize', 0):.1f} s and kept as `{key}`: change only K, "
            "the scales, the seeds or the method (of the same kind) and it is reused."
        )
    return (
        f"{learned} Generated in {timings.get('generate', 0):.1f} s. Target caption: *{result.target_prompt}*"
    )
