"""Random-weight pipelines built in code (no downloads), for tests and benchmarks.

Tests use tiny ones (the whole method runs in about a second on a CPU, as in diffusers' own tests);
benchmarks use the real checkpoints' sizes, since compute and memory do not depend on the weights. Each
family has a module (:mod:`.sd`, :mod:`.sdxl`, :mod:`.flux`): a frozen dataclass of its sizes, its tiny and
real shapes, and ``<family>_components(directory, shape, seed, device, ...)`` returning the components its
diffusers pipeline takes; :data:`PIPELINES` is the one table that names them. A new family is one module and
one entry here, and the contract suite (tests/families/test_contract.py) then runs on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .flux import FLUX_DEV, TINY_FLUX, FluxShape, flux_components, flux_transformer, t5_encoder
from .parts import t5_tokenizer
from .sd import SD21_BASE, TINY_SD, SdShape, sd_components
from .sdxl import SDXL_BASE, TINY_SDXL, SdxlShape, sdxl_components

__all__ = [
    "FLUX_DEV", "PIPELINES", "SD21_BASE", "SDXL_BASE", "TINY_FLUX", "TINY_SD", "TINY_SDXL", "FluxShape",
    "RandomPipeline", "SdShape", "SdxlShape", "flux_transformer", "random_components",
    "random_image", "random_pipeline", "save_random_pipeline", "t5_encoder", "t5_tokenizer",
]  # fmt: skip


@dataclass(frozen=True)
class RandomPipeline:
    """How to build one family's random pipeline: its components at a shape, and the class that assembles them."""

    components: Callable[..., dict[str, Any]]  # (directory, shape, seed=0, device="cpu", **family options)
    pipeline_class: str  # a class exported by diffusers
    tiny: Any  # the tiny test pipeline's shape (the default)
    real: Any  # the real checkpoint's sizes, for the speed and memory benchmarks
    extra: tuple[tuple[str, Any], ...] = ()  # the class's other arguments


_NO_IMAGE_ENCODER = (("image_encoder", None), ("feature_extractor", None))
# pipeline name -> recipe; every family in imposter.families has one, under its name
PIPELINES: dict[str, RandomPipeline] = {
    "sd": RandomPipeline(
        sd_components,
        "StableDiffusionPipeline",
        TINY_SD,
        SD21_BASE,
        (("safety_checker", None), ("feature_extractor", None), ("requires_safety_checker", False)),
    ),
    "sdxl": RandomPipeline(sdxl_components, "StableDiffusionXLPipeline", TINY_SDXL, SDXL_BASE),
    "flux": RandomPipeline(flux_components, "FluxPipeline", TINY_FLUX, FLUX_DEV),
    # FLUX.1 Kontext: diffusers' test_pipeline_flux_kontext.py builds the same models as its FLUX test
    "kontext": RandomPipeline(flux_components, "FluxKontextPipeline", TINY_FLUX, FLUX_DEV, _NO_IMAGE_ENCODER),
}


def random_components(name: str, directory: Path, shape: Any = None, **options: Any) -> dict[str, Any]:
    """The components of pipeline ``name`` at ``shape`` (default: its tiny one), tokenizer files in ``directory``.

    ``options``: seed, device, and the family's own (SD: prediction_type; FLUX.1: guidance_embeds).
    """
    recipe = PIPELINES[name]
    return recipe.components(directory, shape or recipe.tiny, **options)


def random_pipeline(name: str, directory: Path, shape: Any = None, **options: Any):
    """A ``name`` pipeline ("sd", "sdxl", "flux", "kontext") with random weights; see :func:`random_components`."""
    import diffusers

    recipe = PIPELINES[name]
    pipeline_class = getattr(diffusers, recipe.pipeline_class)
    return pipeline_class(**random_components(name, directory, shape, **options), **dict(recipe.extra))


def save_random_pipeline(
    name: str, directory: Path, shape: Any = None, folder: str | None = None, **options: Any
) -> Path:
    """Save :func:`random_pipeline` (safetensors) to ``directory / folder`` and return that path.

    ``folder`` defaults to ``tiny-<name>`` (``random-<name>`` at another shape).
    """
    path = directory / (folder or f"{'random' if shape else 'tiny'}-{name}")
    random_pipeline(name, directory, shape, **options).save_pretrained(path, safe_serialization=True)
    return path


def random_image(path: Path | None = None, size=(64, 64), seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random RGB image (saved to ``path`` if given)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
    if mode != "RGB":
        image = image.convert(mode)
    if path is not None:
        image.save(path)
    return image


def random_controlnet(unet, vae_scale_factor: int, seed: int = 0):
    """A ControlNet for ``unet`` (SD or SDXL) as diffusers' ``ControlNetModel.from_unet`` makes one, its zero
    convolutions given small random weights so that the pose map changes the output (a trained one's do).

    Its conditioning embedding downsamples the map by ``vae_scale_factor`` (the pipeline's), to the latents.
    """
    import torch

    from ..controlnet import controlnet_for

    torch.manual_seed(seed)
    controlnet = controlnet_for(unet, vae_scale_factor, width=8)
    zeroed = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    zeroed.append(controlnet.controlnet_cond_embedding.conv_out)
    with torch.no_grad():
        for module in zeroed:
            module.weight.normal_(0.0, 0.05)
    return controlnet.eval()
