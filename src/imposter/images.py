"""Images in and out: load and validate, fit to the model's size, tensors, grids."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from .errors import ConfigError, InputImageError

if TYPE_CHECKING:
    import torch

MIN_SIDE = 32  # below this an input holds too little to fine-tune on
MIN_GRID_TILE = 256  # grids show smaller images enlarged (nearest neighbour) to at least this many pixels
PAD_COLOR = (0, 0, 0)  # authors' code: expand2square pads with black


def load_image(path: str | Path, role: str = "image") -> Image.Image:
    """Open ``path`` as an RGB image; a missing, unreadable or tiny file is an InputImageError.

    Grayscale, palette, CMYK and images with alpha are converted to RGB with a warning that says what
    was done (transparent pixels are composited onto the padding colour, black).
    """
    path = Path(path)
    if not path.exists():
        raise InputImageError(f"{role} image not found: {path} (check the path)")
    if path.is_dir():
        raise InputImageError(f"{role} image {path} is a folder; give an image file (PNG, JPEG, WebP)")
    try:
        with Image.open(path) as opened:
            opened.load()
            frames = getattr(opened, "n_frames", 1)
            image = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputImageError(
            f"{role} file {path} is not a readable image ({err}); give a PNG, JPEG or WebP"
        ) from err
    if frames > 1:
        warnings.warn(
            f"{role} image {path} is animated ({frames} frames); using its first frame "
            "(imposter animate takes a whole sequence)",
            stacklevel=2,
        )
    return to_rgb(image, f"{role} image {path}")


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16- or 32-bit integer grayscale image ("I;16", "I") as 8-bit "L", scaled (PIL would clip at 255)."""
    array = np.asarray(image, dtype=np.float64)
    peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    return Image.fromarray(np.clip(np.round(array * (255.0 / peak)), 0, 255).astype(np.uint8), "L")


def to_rgb(image: Image.Image, what: str = "image") -> Image.Image:
    """Return ``image`` as RGB, warning about any conversion; reject images under MIN_SIDE pixels."""
    if min(image.size) < MIN_SIDE:
        raise InputImageError(
            f"{what} is {image.width}x{image.height}; it needs at least {MIN_SIDE} pixels on each side"
        )
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        warnings.warn(f"{what} has transparency ({mode}); composited onto black", stacklevel=2)
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, PAD_COLOR + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I"):
        warnings.warn(f"{what} is {mode} grayscale; scaled to 8 bits and converted to RGB", stacklevel=2)
        return eight_bit(image).convert("RGB")
    if mode in ("L", "1", "F"):
        warnings.warn(f"{what} is grayscale ({mode}); converted to RGB", stacklevel=2)
    elif mode == "CMYK":
        warnings.warn(f"{what} is CMYK; converted to RGB (colours may shift slightly)", stacklevel=2)
    elif mode != "P":
        warnings.warn(f"{what} has mode {mode}; converted to RGB", stacklevel=2)
    return image.convert("RGB")


def fit_image(image: Image.Image, width: int, height: int, fit: str = "pad") -> Image.Image:
    """Resize to ``width`` x ``height``: ``pad`` keeps everything (black borders), ``crop`` fills the frame."""
    if fit == "pad":
        scale = min(width / image.width, height / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.resize(size, Image.LANCZOS)
        canvas = Image.new("RGB", (width, height), PAD_COLOR)
        canvas.paste(resized, ((width - size[0]) // 2, (height - size[1]) // 2))
        return canvas
    if fit == "crop":
        return ImageOps.fit(image, (width, height), Image.LANCZOS)
    raise ConfigError(f"$fit must be 'pad' or 'crop', got {fit!r}")


def check_size(width: int, height: int, multiple: int) -> None:
    """Raise ConfigError unless both sides are positive multiples of ``multiple`` (the VAE's factor)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % multiple:
            raise ConfigError(
                f"--{name} {value} must be a positive multiple of {multiple} for this model;"
                f" try {max(multiple, round(value / multiple) * multiple)}"
            )


def to_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """RGB PIL images -> float tensor (N, 3, H, W) in [-1, 1], the VAE's input range."""
    import torch

    arrays = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


def to_pil(tensor: torch.Tensor) -> list[Image.Image]:
    """Float tensor (N, 3, H, W) in [-1, 1] -> RGB PIL images."""
    import torch

    array = ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a) for a in array.permute(0, 2, 3, 1).cpu().numpy()]


def image_grid(
    rows: Sequence[Sequence[Image.Image]], labels: Sequence[str] | None = None, pad: int = 4
) -> Image.Image:
    """Paste rows of equally sized images into one picture, with an optional caption above each column.

    Images under MIN_GRID_TILE pixels wide are enlarged by a whole factor (nearest neighbour, so a 64-px
    result shows its pixels rather than a blur).
    """
    if not rows or not rows[0]:
        raise ValueError("image_grid needs at least one image")
    width, height = rows[0][0].size
    zoom = max(1, MIN_GRID_TILE // width)
    if zoom > 1:
        rows = [[image.resize((width * zoom, height * zoom), Image.NEAREST) for image in row] for row in rows]
        width, height = width * zoom, height * zoom
    label_height = 14 if labels else 0
    columns = max(len(row) for row in rows)
    grid = Image.new(
        "RGB",
        (columns * (width + pad) + pad, len(rows) * (height + pad) + pad + label_height),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(grid)
    for c, label in enumerate(labels or []):
        draw.text((pad + c * (width + pad), 1), label[: max(4, width // 6)], fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = image if image.size == (width, height) else image.resize((width, height), Image.LANCZOS)
            grid.paste(tile, (pad + c * (width + pad), pad + label_height + r * (height + pad)))
    return grid
