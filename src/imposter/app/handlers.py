"""What the page does: each handler turns the page's values into one library call, and its result into outputs.

The jobs are the CLI's own (``run_generate``, ``run_animate``), so a page run writes the same folder as
``imposter generate``: images, grid, ``config.json``, adapter. Library errors become one-line page
errors that name the field a user sees ("Source caption is empty"), never a flag or a traceback: an error
names its settings, and the page writes them as its labels (``ImposterError.render``).

Personalize once, tune live: a fine-tune is stored under a hash of what it learned from (the uploaded
files, the captions, the model, the method's kind of personalization and the fine-tuning settings) and
indexed in memory for the session, so changing only sampling settings (K, scales, seeds, a method that
shares the fine-tune) never fine-tunes again. The jobs take adapter folders, so its weights are read
back from disk for each run (milliseconds for a LoRA).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
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
from ..personalizations import METADATA_FILE
from ..prompts import compose_target_prompt
from ..run import ADAPTER_DIR, CONFIG_FILE, run_generate
from ..settings import resolve
from ..video.animate import AnimateConfig, run_animate
from .fields import (
    DRIVING_FRAMES,
    DRIVING_FRAMES_KEYPOINTS,
    EVERY,
    LABELS,
    NO_DETECTOR,
    SAMPLING_FIELDS,
    SEED,
    SOURCE_IMAGE,
    Settings,
    captions,
    page_errors,
    page_message,
    page_settings,
    parse_seeds,
    required,
)


def family_methods(engine: ImPoster, names: Sequence[str]) -> list[str]:
    """The methods among ``names`` that run on ``engine``'s model family (SD, SDXL, FLUX.1)."""
    return [name for name in names if engine.family.name in get_method(name).families]


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
                value = getattr(defaults, field)
                updates.append(gr.update(value=0 if value is None else value, interactive=True))
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

    def upload(self, files: str | Sequence[str] | None, label: str, image: bool = True) -> tuple[str, Path]:
        """Check an upload (``image``: each file with the library's image loader) and keep it: its digest, and
        the kept file, or the folder of several (frames, in upload order)."""
        files = required(files or None, label)
        files = [files] if isinstance(files, str) else [str(path) for path in files]
        for path in files if image else ():
            try:
                load_image(path, label.removesuffix(" image"))
            except ImposterError as err:  # name the file, not Gradio's upload folder
                message = page_message(err).replace(path, Path(path).name)
                raise gr.Error(message, print_exception=False) from err
        key, folder = self.keep_inputs(files)
        # one file (an image, a video, a GIF) is read as it is
        return key, next(folder.iterdir()) if len(files) == 1 else folder

    # -- jobs ------------------------------------------------------------------------------------

    def finetune_key(self, settings: Settings, learned_from: Mapping[str, Any]) -> str:
        """The cache key of a fine-tune: the model, the method's kind of personalization and the page's
        fine-tuning settings (which, with those two, decide the rest)."""
        return digest(
            {
                "model": self.engine.model,
                "dtype": str(self.engine.dtype),
                "personalization": settings.method.finetune_kind,
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
        learns = settings.method.finetune_kind != "none"
        return (
            result,
            [*archives, str(folder / CONFIG_FILE)],
            status(result, adapter is not None, key, learns),
        )

    def submit(
        self,
        tab: Tab,
        source: str | None,
        driving: Any,
        texts: Sequence[str],
        method_name: str,
        finetune_steps: int,
        sampling_values: Sequence[Any],
        own_values: Sequence[Any],
    ) -> tuple[Any, list[str], str]:
        """Run ``tab``'s job on the page's values (captions, the sampling values in SAMPLING_FIELDS' order, then
        the tab's own): its result, the downloads and the status line."""
        with page_errors(tab.labels):
            source_key, source_path = self.upload(source, SOURCE_IMAGE)
            driving_key, driving_path = self.upload(driving, tab.labels["driving"], image=tab.driving_image)
            source_caption, driving_caption, target = captions(*texts)
            settings = page_settings(method_name, finetune_steps, *sampling_values)
            config = tab.config(
                model=self.engine.model,
                method=settings.method.name,
                source=str(source_path),
                driving=str(driving_path),
                source_prompt=source_caption,
                driving_prompt=driving_caption,
                target_prompt=target,
                finetune=settings.finetune,
                sampling=settings.sampling,
                **tab.fields(*own_values),
            )
            learned_from = {
                "images": [source_key, driving_key],
                "captions": [source_caption, driving_caption, target],
                **tab.learned_from(config),
            }
            return self.run(tab.job, config, settings, learned_from, tab.runs)

    # Gradio hands the fields positionally, and finds the progress bar by its parameter: hence the long lists
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
        driving_strength: float,
        seeds: str,
        source_keypoints: str | None = None,
        driving_keypoints: str | None = None,
        detect_pose: str | None = None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008  (Gradio's way to ask for a bar)
    ) -> tuple[list[tuple[str, str]], str, list[str], str]:
        """Fine-tune (or reuse the cached fine-tune) and generate: (gallery, grid, downloads, status)."""
        result, downloads, message = self.submit(
            GENERATE,
            source,
            driving,
            (source_caption, driving_caption, target_caption),
            method_name,
            finetune_steps,
            (steps, k, amp_scale, phase_scale, guidance_scale, driving_strength),
            (seeds, source_keypoints, driving_keypoints, detect_pose),
        )
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
        driving_strength: float,
        seed: int,
        every: int,
        max_frames: int | None,
        source_keypoints: str | None = None,
        driving_keypoints: Sequence[str] | None = None,
        detect_pose: str | None = None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008
    ) -> tuple[str, str, list[str], str]:
        """The animate job on a video or several frames: (GIF, strip, downloads, status)."""
        # the frames' keypoint files, kept in upload order (0000.json, 0001.json...) in a folder of their own
        frames_keypoints = str(self.keep_inputs(driving_keypoints)[1]) if driving_keypoints else None
        result, downloads, message = self.submit(
            ANIMATE,
            source,
            driving,
            (source_caption, driving_caption, target_caption),
            method_name,
            finetune_steps,
            (steps, k, amp_scale, phase_scale, guidance_scale, driving_strength),
            (seed, every, max_frames, source_keypoints, frames_keypoints, detect_pose),
        )
        return str(result.gif), str(result.strip), downloads, message


@dataclass(frozen=True)
class Tab:
    """What a tab runs: the library's job and its config, the tab's own fields, and where its runs go."""

    job: Callable[..., Any]  # run_generate, run_animate
    config: Callable[..., Any]  # the job's config from its fields
    fields: Callable[..., dict[str, Any]]  # the tab's own values (after the sampling ones) as config fields
    runs: str  # the folder under the app's output folder
    labels: Mapping[str, str]  # what the tab calls each setting
    driving_image: bool = True  # the driving upload is one image (else a video or frames)
    learned_from: Callable[[Any], dict[str, Any]] = lambda config: {}  # what else the fine-tune learns from


def keypoint_settings(source: str | None, driving: str | None, detect_pose: str | None) -> dict[str, Any]:
    """The keypoint uploads and the detector of the others, as config fields (empty and "no": None)."""
    return {
        "source_keypoints": source or None,
        "driving_keypoints": driving or None,
        "detect_pose": None if detect_pose in (None, "", NO_DETECTOR) else detect_pose,
    }


GENERATE = Tab(
    run_generate,
    RunConfig,
    lambda seeds, source_keypoints=None, driving_keypoints=None, detect_pose=None: {
        "seeds": tuple(parse_seeds(seeds)),
        **keypoint_settings(source_keypoints, driving_keypoints, detect_pose),
    },
    "runs",
    LABELS,
)
ANIMATE = Tab(
    run_animate,
    lambda **fields: AnimateConfig(**fields).validate(),
    lambda seed, every, max_frames, source_keypoints=None, driving_keypoints=None, detect_pose=None: {
        "seed": int(required(seed, SEED)),
        "every": int(required(every, EVERY)),
        "max_frames": int(max_frames) if max_frames else None,
        **keypoint_settings(source_keypoints, driving_keypoints, detect_pose),
    },
    "animations",
    {**LABELS, "driving": DRIVING_FRAMES, "seeds": SEED, "driving_keypoints": DRIVING_FRAMES_KEYPOINTS},
    driving_image=False,
    learned_from=lambda config: {"frames": [config.every, config.max_frames, config.train_frames]},
)


def status(result: Any, reused: bool, key: str, learns: bool = True) -> str:
    """What the run did, for the page: fine-tuned, reused or nothing to learn, and how long each part took."""
    timings = result.timings
    if not learns:
        learned = "**Nothing to fine-tune**: this method learns nothing."
    elif reused:
        learned = f"**Reused** the fine-tune `{key}`: no fine-tuning."
    else:
        learned = (
            f"**Fine-tuned** in {timings.get('personalize', 0):.1f} s and kept as `{key}`: change only K, "
            "the scales, the seeds or the method (of the same kind) and it is reused."
        )
    return (
        f"{learned} Generated in {timings.get('generate', 0):.1f} s. Target caption: *{result.target_prompt}*"
    )
