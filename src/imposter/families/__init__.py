"""Model families by name, and by the pipeline class a checkpoint's ``model_index.json`` names.

Each family's module is imported only when asked for (SDXL's and FLUX.1's import nothing heavy at the top,
but keeping the lookup lazy keeps ``imposter --help`` fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import ModelLoadError

if TYPE_CHECKING:
    from .base import Family

# name -> (module, class)
_REGISTRY: dict[str, tuple[str, str]] = {
    "sd": ("sd", "StableDiffusion"),
    "sdxl": ("sdxl", "StableDiffusionXL"),
    "flux": ("flux", "Flux"),
}
# model_index.json ``_class_name`` -> family name
PIPELINE_FAMILIES: dict[str, str] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "FluxPipeline": "flux",
    "FluxKontextPipeline": "flux",  # FLUX.1 Kontext: the same transformer, also read the image to edit
}
FAMILY_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_family(name: str) -> Family:
    """The family called ``name`` ("sd", "sdxl", "flux")."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model family {name!r}; one of {FAMILY_NAMES}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)()


def family_for_class(class_name: str | None, where: str) -> Family:
    """The family of a pipeline class name (a ``model_index.json``'s ``_class_name``); ModelLoadError if none."""
    if class_name not in PIPELINE_FAMILIES:
        raise ModelLoadError(
            f"{where} is a {class_name or 'pipeline of unknown class'}; imposter runs "
            f"{', '.join(PIPELINE_FAMILIES)} checkpoints (SD 1.x/2.x, SDXL, FLUX.1)"
        )
    return get_family(PIPELINE_FAMILIES[class_name])


def family_of(pipe) -> Family:
    """The family of a loaded pipeline, by its class (a subclass counts as its base)."""
    for cls in type(pipe).__mro__:
        if cls.__name__ in PIPELINE_FAMILIES:
            return get_family(PIPELINE_FAMILIES[cls.__name__])
    return family_for_class(type(pipe).__name__, "the pipeline given")
