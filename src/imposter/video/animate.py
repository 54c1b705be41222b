"""The ``animate`` job: the source subject performs a driving *sequence*, one output frame per driving frame.

    OUT/frames/frame_0000.png ...  one image per kept driving frame
    OUT/animation.gif              the frames, looping, at the sequence's rate (or --fps)
    OUT/animation.mp4              the same as H.264, when imageio-ffmpeg is installed
    OUT/strip.png                  driving frames above the generated ones, the source at the left
    OUT/config.json                every setting, the package versions, timings
    OUT/adapter/                   the LoRA (loadable by pipe.load_lora_weights)

One fine-tune serves every frame: a LoRA on the source (with the source caption) and up to
``train_frames`` evenly spaced driving frames (with the driving caption), all in one batch per step
(the source-only methods, ``imposter-subject``, ``subject-lora`` and ``pose-control``, learn the source alone).
``pose-control`` (DreamPose's way) feeds each frame's own pose map (``driving_pose_maps``) to the ControlNet.
Then every frame is denoised from the *same* initial noise (the seed's) with the same settings; only
the phase-guidance target changes, to that frame's own driving latents. Sharing the noise is what keeps
the frames alike: with guidance off and K = 0 every frame would be the same image. Frames are denoised
``sampling.batch_size`` at a time, by ``ImPoster.sample_batches`` like generate's seeds. Run again with the same settings, it reuses the adapter and skips
the frames already written; with other settings it refuses unless ``overwrite`` is set.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..engine import ImPoster
from ..errors import ConfigError
from ..fileio import save_image
from ..images import fit_image, load_image
from ..methods import get_method
from ..methods.base import Method
from ..methods.imposter import SUBJECT_VARIANTS, VARIANTS, ImPosterMethod
from ..prepared import PreparedPair
from ..retarget import content_box, fitted_keypoints, matte_image, moved_figure, retargeted_image
from ..run import Job, run_job, settled
from .config import DEFAULT_FPS, DEFAULT_FRAME_BATCH, AnimateConfig
from .frames import evenly_spaced, read_frames, read_keypoint_frames
from .writers import frame_name, mp4_available, strip_picture, write_gif, write_mp4

FRAMES_DIR = "frames"
# the methods that sample every frame from one LoRA (imposter: from nothing learned)
SEQUENCE_METHODS: tuple[str, ...] = (
    "imposter", "imposter-guided", *VARIANTS, *SUBJECT_VARIANTS, "pose-control",
)  # fmt: skip


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
            f"animate cannot use $method {name}: it animates with one LoRA shared by every frame; "
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
    pose_maps: list[Image.Image] | None = None  # one per frame, fitted like them (pose-control)
    retargeted: torch.Tensor | None = None  # (N, C, h, w): the source moved into each frame's pose
    figures: Any = None  # (N, H, W) bool: where the moved source lies in each (retarget.moved_figure)

    def frames_pair(self, indices: Sequence[int]) -> PreparedPair:
        """The pair with the driving latents (pose maps, retargeted source) of frames ``indices``: what
        guidance, the ControlNet, imposter and fine-tuning read."""
        maps = [self.pose_maps[i] for i in indices] if self.pose_maps else self.pair.driving_pose_map
        moved = self.retargeted[list(indices)] if self.retargeted is not None else None
        figures = self.figures[list(indices)] if self.figures is not None else None
        return replace(
            self.pair,
            driving_latents=self.latents[list(indices)],
            driving_pose_map=maps,
            retargeted_latents=moved,
            retargeted_figure=figures,
        )


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
    pose_maps: Sequence[Image.Image] | None = None,
    source_keypoints: Any = None,
    driving_keypoints: Sequence[Any] | None = None,
    source_mask: Any = None,
) -> PreparedSequence:
    """Check the captions and fit every frame (and pose map, and keypoints) like ``engine.prepare``; encode
    ``batch_size`` frames per VAE call. With the source's keypoints and one set per frame, the source is
    also retargeted into every frame's pose (imposter)."""
    # the source's keypoints fitted with the pair; every frame is retargeted below, the first one included
    pair = engine.prepare(
        source, source_prompt, frames[0], driving_prompt, target_prompt, fit, height, width,
        source_keypoints=source_keypoints,
    )  # fmt: skip
    fitted = [fit_image(frame, *pair.size, fit) for frame in frames]
    latents = [engine.encode_images(fitted[i : i + batch_size]) for i in range(0, len(fitted), batch_size)]
    maps = [fit_image(pose_map, *pair.size, fit) for pose_map in pose_maps] if pose_maps else None
    retargeted = figures = None
    if pair.source_keypoints is not None and driving_keypoints:
        matte = (
            None
            if source_mask is None
            else fit_image(matte_image(source_mask, "source", source), *pair.size, fit)
        )
        moved = [
            retargeted_image(
                pair.source_image, frame, pair.source_keypoints,
                fitted_keypoints(points, "driving keypoints", original.size, *pair.size, fit),
                (content_box(source.size, *pair.size, fit), content_box(original.size, *pair.size, fit)),
                (matte, None),
            )
            for frame, original, points in zip(fitted, frames, driving_keypoints, strict=True)
        ]  # fmt: skip
        retargeted = torch.cat(
            [engine.encode_images(moved[i : i + batch_size]) for i in range(0, len(moved), batch_size)]
        )
        figures = moved_figure(moved)
    return PreparedSequence(pair, fitted, torch.cat(latents), maps, retargeted, figures)


class AnimateJob(Job):
    """``animate``: one frame per driving frame, then the GIF (and MP4) and the strip.

    Every frame is sampled by ``ImPoster.sample_batches`` from the seed's noise, guided by its own driving
    frame (the pair holds one driving latent per frame).
    """

    item = "frame"
    per_item = "generate_per_frame"

    def __init__(self, config: AnimateConfig, log: Callable[[str], None]):
        super().__init__()
        # read before the model loads, so that a wrong path fails at once
        self.source = load_image(config.source, "source")
        start = time.perf_counter()
        self.driving = read_frames(config.driving, config.every, config.max_frames)
        self.pose_maps = None
        if config.driving_pose_maps:
            self.pose_maps = read_frames(config.driving_pose_maps, config.every, config.max_frames).images
            if len(self.pose_maps) != len(self.driving.images):
                raise ConfigError(
                    f"$driving_pose_maps gives {len(self.pose_maps)} pose map(s) for {len(self.driving.images)} "
                    "driving frame(s); give one map per driving frame, in the same order"
                )
        self.keypoints = None
        self.source_keypoints = config.source_keypoints
        from ..pose_detection import model_detector

        # the model's own detector where the user named none, as run.resolved records it
        detector = model_detector(config.model, config.detect_pose)
        if detector and get_method(config.method).needs_keypoints:
            from ..pose_detection import detect_keypoints, given_or_detected

            self.source_keypoints = given_or_detected(
                config.source_keypoints, self.source, detector, "source", log
            )
            if not config.driving_keypoints:
                frames = tqdm(self.driving.images, desc="detecting keypoints", leave=False, disable=None)
                found = [detect_keypoints(frame, detector, "driving") for frame in frames]
                self.keypoints = [points for points, _ in found]
                used = Counter(name for _, name in found)
                log(
                    "driving keypoints: found on every frame by "
                    + ", ".join(f"{name} ({count} frames)" for name, count in used.items())
                )
        if config.driving_keypoints:
            self.keypoints = read_keypoint_frames(config.driving_keypoints, config.every, config.max_frames)
            if len(self.keypoints) != len(self.driving.images):
                raise ConfigError(
                    f"$driving_keypoints gives {len(self.keypoints)} keypoint file(s) for "
                    f"{len(self.driving.images)} driving frame(s); give one per driving frame, in the same order"
                )
        self.timings["read_frames"] = time.perf_counter() - start
        log(f"{len(self.driving.images)} driving frame(s) from {config.driving}")

    def load_model(self, config: AnimateConfig, engine: ImPoster | None) -> ImPoster:
        engine = super().load_model(config, engine)
        if config.controlnet:
            engine.load_controlnet(config.controlnet)
        return engine

    def prepare(
        self, engine: ImPoster, config: AnimateConfig, log: Callable[[str], None]
    ) -> tuple[AnimateConfig, dict]:
        # no --batch-size: DEFAULT_FRAME_BATCH frames at a time, not every frame at once
        batch_size = config.sampling.batch_size or DEFAULT_FRAME_BATCH
        config = replace(config, sampling=replace(config.sampling, batch_size=batch_size))
        self.sequence = prepare_sequence(
            engine,
            self.source,
            config.source_prompt,
            self.driving.images,
            config.driving_prompt,
            config.target_prompt or None,
            config.fit,
            config.height,
            config.width,
            batch_size,
            self.pose_maps,
            self.source_keypoints,
            self.keypoints,
            config.source_mask,
        )
        frames = self.sequence.frames
        fps = config.fps or self.driving.fps or DEFAULT_FPS
        config = settled(config, self.sequence.pair, engine, log, fps=fps)
        self.training = evenly_spaced(len(frames), config.train_frames)
        run = config.to_dict() | {"driving_frames": len(frames), "driving_digest": frames_digest(frames)}
        if self.sequence.pose_maps:  # a resumed run must see the same maps too
            run["pose_maps_digest"] = frames_digest(self.sequence.pose_maps)
        if self.sequence.retargeted is not None:  # ... and the same keypoints
            points = [self.sequence.pair.source_keypoints, *self.keypoints]
            rounded = [{name: [round(float(v), 3) for v in xy] for name, xy in p.items()} for p in points]
            run["keypoints_digest"] = hashlib.sha256(
                json.dumps(rounded, sort_keys=True).encode()
            ).hexdigest()[:16]
        return config, run

    def learning_pair(self) -> PreparedPair:
        return self.sequence.frames_pair(self.training)

    def outputs(self, out: Path, config: AnimateConfig) -> dict[int, Path]:
        return {i: out / FRAMES_DIR / frame_name(i) for i in range(len(self.sequence.frames))}

    def sampling_inputs(self, config: AnimateConfig, todo: list[int]) -> tuple[PreparedPair, list[int]]:
        # every frame from the seed's noise (sharing it keeps the frames alike), guided by its own frame
        return self.sequence.frames_pair(todo), [config.seed] * len(todo)

    def finish(
        self, out: Path, config: AnimateConfig, outputs: dict[int, Path], log: Callable[[str], None]
    ) -> dict:
        start = time.perf_counter()
        generated = [Image.open(path).convert("RGB") for path in outputs.values()]
        self.gif = write_gif(generated, out / "animation.gif", config.fps)
        self.mp4 = write_mp4(generated, out / "animation.mp4", config.fps) if mp4_available() else None
        if self.mp4 is None:
            log('no animation.mp4: it needs imageio-ffmpeg (pip install "imposter-diffusion[video]")')
        strip = strip_picture(self.sequence.pair.source_image, self.sequence.frames, generated)
        self.strip = save_image(strip, out / "strip.png")
        self.timings["write"] = time.perf_counter() - start
        return {"training_frames": self.training}


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
    config.validate()
    method = method or sequence_method(config.method)
    job = AnimateJob(config, log)
    ran = run_job(job, config, Path(out), engine, overwrite, progress, log, method)
    target = job.sequence.pair.target_prompt
    frames = list(ran.outputs.values())
    return AnimateResult(
        Path(out), frames, job.gif, job.mp4, job.strip, target, ran.reused_adapter, ran.timings
    )
