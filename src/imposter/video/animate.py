"""The ``animate`` job: the source subject performs a driving *sequence*, one output frame per driving frame.

    OUT/frames/frame_0000.png ...  one image per kept driving frame
    OUT/animation.gif              the frames, looping, at the sequence's rate (or --fps)
    OUT/animation.mp4              the same as H.264, when imageio-ffmpeg is installed
    OUT/strip.png                  driving frames above the generated ones, the source at the left
    OUT/config.json                every setting, the package versions, timings
    OUT/adapter/                   the LoRA (loadable by pipe.load_lora_weights)

One fine-tune serves every frame: a LoRA on the source (with the source caption) and up to
``train_frames`` evenly spaced driving frames (with the driving caption), all in one batch per step.
Then every frame is denoised from the *same* initial noise (the seed's) with the same settings; only
the phase-guidance target changes, to that frame's own driving latents. Sharing the noise is what keeps
the frames alike: with guidance off and K = 0 every frame would be the same image. Frames are denoised
``sampling.batch_size`` at a time. Run again with the same settings, it reuses the adapter and skips
the frames already written; with other settings it refuses unless ``overwrite`` is set.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from ..config import SamplingConfig
from ..engine import ImPoster
from ..errors import ConfigError
from ..fileio import save_image, write_json
from ..images import fit_image, load_image
from ..methods import get_method
from ..methods.base import Method
from ..methods.imposter import VARIANTS, ImPosterMethod
from ..personalizations import Personalization
from ..prepared import PreparedPair
from ..run import (
    CONFIG_FILE,
    environment,
    load_or_personalize,
    open_run_folder,
    resolved,
    settled,
)
from .config import DEFAULT_FPS, DEFAULT_FRAME_BATCH, AnimateConfig
from .frames import evenly_spaced, read_frames
from .writers import frame_name, mp4_available, strip_picture, write_gif, write_mp4

FRAMES_DIR = "frames"
SEQUENCE_METHODS: tuple[str, ...] = ("imposter", *VARIANTS)  # the methods that sample from one LoRA


@dataclass
class AnimateResult:
    """Where an animation's outputs are, and what the run did."""

    out: Path
    frames: list[Path]
    gif: Path
    mp4: Path | None
    strip: Path
    target_prompt: str
    reused_adapter: bool
    timings: dict[str, float] = field(default_factory=dict)


def sequence_method(name: str) -> ImPosterMethod:
    """The method ``name``, if it samples every frame from one LoRA; ConfigError otherwise."""
    if name not in SEQUENCE_METHODS:
        raise ConfigError(
            f"animate cannot use --method {name}: it animates with one LoRA shared by every frame; "
            f"choose one of {', '.join(SEQUENCE_METHODS)}"
        )
    return get_method(name)


def frames_digest(frames: list[Image.Image]) -> str:
    """SHA-256 of the fitted frames' pixels: a resumed run must see the same driving frames."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(f"{frame.size}".encode())
        digest.update(frame.tobytes())
    return digest.hexdigest()[:16]


@dataclass
class PreparedSequence:
    """A source and a driving sequence fitted to the model's size, with every frame's latents."""

    pair: PreparedPair  # its driving image and latents are the first frame's
    frames: list[Image.Image]
    latents: torch.Tensor  # (N, C, h, w), like pair.driving_latents for N frames

    def frames_pair(self, indices: Sequence[int]) -> PreparedPair:
        """The pair with the driving latents of frames ``indices`` (what guidance and fine-tuning read)."""
        return replace(self.pair, driving_latents=self.latents[list(indices)])


def prepare_sequence(
    engine: ImPoster,
    source: Image.Image,
    source_prompt: str,
    frames: Sequence[Image.Image],
    driving_prompt: str,
    target_prompt: str | None = None,
    fit: str = "pad",
    height: int | None = None,
    width: int | None = None,
    batch_size: int = DEFAULT_FRAME_BATCH,
) -> PreparedSequence:
    """Check the captions and fit every frame like ``engine.prepare``; encode ``batch_size`` frames per VAE call."""
    pair = engine.prepare(source, source_prompt, frames[0], driving_prompt, target_prompt, fit, height, width)
    fitted = [fit_image(frame, *pair.size, fit) for frame in frames]
    latents = [engine.encode_images(fitted[i : i + batch_size]) for i in range(0, len(fitted), batch_size)]
    return PreparedSequence(pair, fitted, torch.cat(latents))


def sample_frames(
    engine: ImPoster,
    sequence: PreparedSequence,
    personalization: Personalization,
    method: ImPosterMethod,
    noise: torch.Tensor,
    sampling: SamplingConfig,
    frames: Sequence[int] | None = None,
    progress: bool = True,
    seed: int | None = None,
) -> Iterator[list[tuple[int, Image.Image]]]:
    """Yield batches of (frame index, image) for ``frames`` (default all), each guided by its own frame.

    ``noise`` is (1, C, h, w), the initial noise every frame shares (what animate does), or one per frame.
    ``seed``: the seed of that noise; every frame's sampler noise (DDIM with eta > 0) then continues it.
    """
    frames = list(range(len(sequence.frames)) if frames is None else frames)
    size = sampling.batch_size or max(1, len(frames))
    with personalization.active(engine):
        for start in range(0, len(frames), size):
            batch = frames[start : start + size]
            initial = noise.repeat(len(batch), 1, 1, 1) if len(noise) == 1 else noise[batch]
            generators = None if seed is None else engine.seeded_noise([seed] * len(batch), sequence.pair)[1]
            latents = method.sample(
                engine, sequence.frames_pair(batch), personalization, initial, sampling, progress, generators
            )
            yield list(zip(batch, engine.decode(latents), strict=True))


def run_animate(
    config: AnimateConfig,
    out: str | Path,
    engine: ImPoster | None = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    method: Method | None = None,
) -> AnimateResult:
    """Run ``config`` into ``out``: read the frames, fine-tune once (or reuse), generate every frame, write.

    ``config.finetune`` and ``config.sampling`` are the user's (see ``RunConfig``); ``method``: the
    ``config.method`` object if the caller has it (None: looked up here).
    """
    out = Path(out)
    config.validate()
    method = method or sequence_method(config.method)
    source = load_image(config.source, "source")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    driving = read_frames(config.driving, config.every, config.max_frames)
    timings["read_frames"] = time.perf_counter() - start
    log(f"{len(driving.images)} driving frame(s) from {config.driving}")

    start = time.perf_counter()
    engine = engine or ImPoster.from_pretrained(config.model, config.device, config.dtype)
    timings["load_model"] = time.perf_counter() - start
    config = resolved(config, engine, method)
    # no --batch-size: DEFAULT_FRAME_BATCH frames at a time, not every frame at once
    config = replace(
        config,
        sampling=replace(config.sampling, batch_size=config.sampling.batch_size or DEFAULT_FRAME_BATCH),
    )
    sequence = prepare_sequence(
        engine,
        source,
        config.source_prompt,
        driving.images,
        config.driving_prompt,
        config.target_prompt or None,
        config.fit,
        config.height,
        config.width,
        config.sampling.batch_size,
    )
    pair, frames = sequence.pair, sequence.frames
    config = settled(config, pair, engine, log, fps=config.fps or driving.fps or DEFAULT_FPS)
    run = config.to_dict() | {"driving_frames": len(frames), "driving_digest": frames_digest(frames)}
    previous = open_run_folder(out, run, overwrite)

    start = time.perf_counter()
    training = evenly_spaced(len(frames), config.train_frames)
    resuming = previous is not None
    learned, reused = load_or_personalize(
        engine, sequence.frames_pair(training), method, config, out, resuming, progress, log
    )
    timings["personalize"] = time.perf_counter() - start

    paths = [out / FRAMES_DIR / frame_name(i) for i in range(len(frames))]
    todo = [i for i, path in enumerate(paths) if previous is None or not path.exists()]
    if len(todo) < len(paths):
        log(f"resuming: {len(paths) - len(todo)} of {len(paths)} frames already written")
    start = time.perf_counter()
    noise = engine.initial_noise([config.seed], pair)
    batches = sample_frames(
        engine, sequence, learned, method, noise, config.sampling, todo, progress, seed=config.seed
    )
    for batch in batches:
        for index, image in batch:
            save_image(image, paths[index])
    timings["generate"] = time.perf_counter() - start
    timings["generate_per_frame"] = timings["generate"] / len(todo) if todo else 0.0

    start = time.perf_counter()
    generated = [Image.open(path).convert("RGB") for path in paths]
    gif = write_gif(generated, out / "animation.gif", config.fps)
    mp4 = write_mp4(generated, out / "animation.mp4", config.fps) if mp4_available() else None
    if mp4 is None:
        log('no animation.mp4: it needs imageio-ffmpeg (pip install "imposter-diffusion[video]")')
    strip = save_image(strip_picture(pair.source_image, frames, generated), out / "strip.png")
    timings["write"] = time.perf_counter() - start

    timings = {k: round(v, 3) for k, v in timings.items()}
    write_json(
        out / CONFIG_FILE,
        {
            "run": run,
            "environment": environment(),
            "status": "done",
            "timings": timings,
            "training_frames": training,
            "personalization": learned.info,
        },
    )
    return AnimateResult(out, paths, gif, mp4, strip, pair.target_prompt, reused, timings)
