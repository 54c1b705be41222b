"""Methods by name: ImPoster, Baseline++, the paper's ablations, the authors' release, and peers.

Each entry is imported only when asked for, so a method's module can use anything below it.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import Method

# name -> (module, factory name, argument)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "imposter": ("imposter", "ImPosterMethod", None),
    "baseline++": ("imposter", "variant", "baseline++"),
    "imposter-k0": ("imposter", "variant", "imposter-k0"),
    "imposter-no-guidance": ("imposter", "variant", "imposter-no-guidance"),
    "imposter-no-phase": ("imposter", "variant", "imposter-no-phase"),
    "imposter-no-amp": ("imposter", "variant", "imposter-no-amp"),
    "imposter-authors": ("authors", "AuthorsMethod", None),
    "hiper": ("hiper", "HiPerMethod", None),
    "adi": ("adi", "ADIMethod", None),
    "adi+lora": ("adi", "ADILoraMethod", None),
}

METHOD_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get_method(name: str) -> Method:
    """The method called ``name``; ConfigError listing the valid names otherwise."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; choose one of: {', '.join(METHOD_NAMES)}")
    module, factory, argument = _REGISTRY[name]
    build = getattr(importlib.import_module(f"{__name__}.{module}"), factory)
    return build(argument) if argument is not None else build()
