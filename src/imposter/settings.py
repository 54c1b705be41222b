"""The settings of one job, resolved once: paper < method < family < user < what the method fixes.

Every entry point (``imposter generate``, ``bench``, ``animate``, the app, the Python API) calls
:func:`resolve` once per job and hands the result down; nothing below it looks for settings again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from .config import FinetuneConfig, SamplingConfig, override

if TYPE_CHECKING:
    from .families.base import Family
    from .methods.base import Method

C = TypeVar("C", FinetuneConfig, SamplingConfig)
# What a user gives: settings by name (flags, the page's fields), a whole config (the Python API), or nothing.
Given = Mapping[str, Any] | FinetuneConfig | SamplingConfig | None


def resolve(
    method: Method, family: Family | None, finetune: Given = None, sampling: Given = None
) -> tuple[FinetuneConfig, SamplingConfig]:
    """The fine-tuning and sampling settings ``method`` runs with on ``family``, validated.

    Each layer replaces the one before: the paper's defaults (``imposter.config``), the method's own, the
    family's (FLUX.1: 28 steps, guidance 3.5), the user's, and last what defines the method (Baseline++:
    K = 0, no guidance). A setting the user gave by name that contradicts the last is a one-line
    ConfigError; a whole config (the Python API) carries defaults its author did not choose, so the method
    silently wins there. ``family`` None: no family layer (a bench set up before its model is known).
    LoRA targets and gradient checkpointing left None are the family's, read when the fine-tune runs.
    """
    method.check_flags({"finetune": _named(finetune), "sampling": _named(sampling)})
    family_finetune = family.finetune_defaults if family is not None else {}
    family_sampling = family.sampling_defaults if family is not None else {}
    return (
        method.finetune_config(
            _layered(FinetuneConfig(), method.finetune_defaults, family_finetune, _fields(finetune))
        ),
        method.sampling_config(
            _layered(SamplingConfig(), method.sampling_defaults, family_sampling, _fields(sampling))
        ),
    )


def _layered(config: C, *layers: Mapping[str, Any]) -> C:
    """``config`` with each layer's settings on top of the one before."""
    for layer in layers:
        config = override(config, **layer)
    return config


def _fields(given: Given) -> Mapping[str, Any]:
    """The user's settings by name: every field of a whole config, or those named."""
    if isinstance(given, FinetuneConfig | SamplingConfig):
        return {field.name: getattr(given, field.name) for field in fields(given)}
    return given or {}


def _named(given: Given) -> Mapping[str, Any]:
    """The settings the user named one by one (a whole config names none: see ``resolve``)."""
    return {} if isinstance(given, FinetuneConfig | SamplingConfig) else given or {}
