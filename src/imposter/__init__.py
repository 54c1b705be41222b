"""imposter: make the subject of one image perform the action of another (ImPoster, arXiv 2409.15650).

The names below load on first use, so that ``import imposter`` (and ``imposter --help``) stays fast:
torch and diffusers are imported when the work starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import ImposterError

__version__ = "0.1.0"

_LAZY = {
    "FinetuneConfig": "config",
    "RunConfig": "config",
    "SamplingConfig": "config",
    "ImPoster": "engine",
    "PreparedPair": "prepared",
}

if TYPE_CHECKING:
    from .config import FinetuneConfig, RunConfig, SamplingConfig
    from .engine import ImPoster
    from .prepared import PreparedPair


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FinetuneConfig",
    "ImPoster",
    "ImposterError",
    "PreparedPair",
    "RunConfig",
    "SamplingConfig",
    "__version__",
]
