"""Read a driving sequence: a folder of images (in natural order), a video (imageio's ffmpeg plugin) or a GIF.

``every`` keeps one frame in ``every`` and ``max_frames`` stops after that many kept frames; reading
stops there too, so a long video is never decoded past what is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from ..errors import ConfigError, InputImageError
from ..images import load_image, to_rgb

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
INSTALL_VIDEO = 'pip install "imposter-diffusion[video]"'


@dataclass
class Frames:
    """The kept frames of a driving sequence, and their rate."""

    images: list[Image.Image]
    fps: float | None  # frames per second after the stride; None when the input has no timing (a folder)


def natural_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10`` (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _kept(items: Iterable, every: int, max_frames: int | None) -> Iterator:
    """Every ``every``-th item from the first, at most ``max_frames`` of them."""
    stop = None if max_frames is None else (max_frames - 1) * every + 1
    return islice(items, 0, stop, every)


def evenly_spaced(count: int, limit: int) -> list[int]:
    """Indices of at most ``limit`` of ``count`` items, spread evenly (first and last included)."""
    if count <= limit:
        return list(range(count))
    return [int(i) for i in np.linspace(0, count - 1, limit).round()]


def check_selection(every: int, max_frames: int | None) -> None:
    """ConfigError unless ``every >= 1`` and ``max_frames`` is None or ``>= 1``."""
    if every < 1:
        raise ConfigError(f"$every must be >= 1 (1 keeps every frame), got {every}")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"$max_frames must be >= 1, got {max_frames}")


def read_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> Frames:
    """The driving frames at ``path`` (folder of images, video file, GIF or one still image), as RGB."""
    check_selection(every, max_frames)
    path = Path(path)
    if not path.exists():
        raise InputImageError(f"driving frames not found: {path} (give a folder of images or a video file)")
    if path.is_dir():
        return _read_folder(path, every, max_frames)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        frames = _read_gif(path, every, max_frames)
    elif suffix in IMAGE_SUFFIXES:
        frames = Frames([load_image(path, "driving")], None)
    else:
        frames = _read_video(path, every, max_frames)
    if not frames.images:
        raise InputImageError(
            f"driving video {path} holds no frames; give another video or a folder of images"
        )
    return frames


def _read_folder(folder: Path, every: int, max_frames: int | None) -> Frames:
    names = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    if not names:
        raise InputImageError(
            f"driving folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            "put the frames there, or give a video file"
        )
    return Frames([load_image(p, "driving frame") for p in _kept(names, every, max_frames)], None)


def _read_gif(path: Path, every: int, max_frames: int | None) -> Frames:
    try:
        with Image.open(path) as gif:
            duration = gif.info.get("duration") or 0
            images = [
                to_rgb(frame.convert("RGB"), f"driving frame of {path}")
                for frame in _kept(ImageSequence.Iterator(gif), every, max_frames)
            ]
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputImageError(f"driving GIF {path} could not be read ({err}); give another file") from err
    return Frames(images, 1000.0 / (duration * every) if duration else None)


def _read_video(path: Path, every: int, max_frames: int | None) -> Frames:
    try:
        import imageio.v3 as iio
        import imageio_ffmpeg  # noqa: F401  (imageio's ffmpeg plugin needs it)
    except ImportError as err:
        raise InputImageError(
            f"reading the video {path} needs imageio's ffmpeg plugin: {INSTALL_VIDEO} "
            "(or give a folder of frames)"
        ) from err
    try:
        fps = iio.immeta(path, plugin="FFMPEG").get("fps")
        arrays = list(_kept(iio.imiter(path, plugin="FFMPEG"), every, max_frames))
    except (OSError, RuntimeError, ValueError, StopIteration) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputImageError(
            f"driving video {path} could not be read ({reason}); give a video ffmpeg can decode "
            f"({', '.join(VIDEO_SUFFIXES)}) or a folder of frames"
        ) from err
    images = [to_rgb(Image.fromarray(np.asarray(a)[..., :3]), f"frame of {path}") for a in arrays]
    return Frames(images, float(fps) / every if fps and np.isfinite(fps) else None)


def read_keypoint_frames(folder: str | Path, every: int = 1, max_frames: int | None = None) -> list[dict]:
    """The driving frames' body keypoints: a folder of OpenPose JSON files, one per frame (OpenPose's
    ``--write_json`` writes one), in natural order, kept with the same ``every`` and ``max_frames`` as the
    frames."""
    from ..retarget import read_keypoints

    folder = Path(folder)
    if not folder.is_dir():
        raise InputImageError(
            f"driving keypoints {folder} is not a folder; give a folder of OpenPose JSON files, one per frame"
        )
    names = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() == ".json"), key=lambda p: natural_key(p.name)
    )
    if not names:
        raise InputImageError(
            f"driving keypoints folder {folder} holds no .json files; one per driving frame"
        )
    return [read_keypoints(path, "driving keypoints") for path in _kept(names, every, max_frames)]
