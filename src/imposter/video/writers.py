"""Write an animation: numbered frame PNGs, an animated GIF, an MP4 (with imageio-ffmpeg) and a strip picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..fileio import temporary_beside
from ..images import image_grid
from .frames import evenly_spaced

STRIP_COLUMNS = 12  # frames shown in a strip picture; a longer sequence is shown at evenly spaced frames


def frame_name(index: int) -> str:
    """File name of frame ``index`` of an animation."""
    return f"frame_{index:04d}.png"


def write_gif(frames: Sequence[Image.Image], path: str | Path, fps: float) -> Path:
    """Write the frames as a looping GIF at ``fps``, atomically."""
    path = Path(path)
    with temporary_beside(path, ".gif") as temporary:
        frames[0].save(
            temporary,
            format="GIF",
            save_all=True,
            append_images=list(frames[1:]),
            duration=round(1000 / fps),
            loop=0,
        )
    return path


def mp4_available() -> bool:
    """True when imageio's ffmpeg plugin (the ``video`` extra) is installed."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def write_mp4(frames: Sequence[Image.Image], path: str | Path, fps: float) -> Path:
    """Write the frames as an H.264 MP4 at ``fps``, atomically (needs imageio-ffmpeg: see ``mp4_available``)."""
    import imageio.v3 as iio

    path = Path(path)
    stack = np.stack([np.asarray(frame.convert("RGB")) for frame in frames])
    with temporary_beside(path, ".mp4") as temporary:
        # the sides are multiples of the VAE's factor, hence even, which is all H.264 (yuv420p) needs;
        # imageio's default (multiples of 16) would resize e.g. 520x360 frames, with a warning
        iio.imwrite(temporary, stack, plugin="FFMPEG", fps=fps, macro_block_size=1)
    return path


def strip_picture(
    source: Image.Image,
    driving: Sequence[Image.Image],
    generated: Sequence[Image.Image],
    columns: int = STRIP_COLUMNS,
) -> Image.Image:
    """Driving frames above the generated ones, the source at the left of the generated row."""
    shown = evenly_spaced(len(generated), columns)
    blank = Image.new("RGB", source.size, (255, 255, 255))
    return image_grid(
        [[blank, *(driving[i] for i in shown)], [source, *(generated[i] for i in shown)]],
        ["source", *(f"frame {i}" for i in shown)],
    )
