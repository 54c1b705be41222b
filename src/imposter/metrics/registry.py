"""Build metrics by name, skipping (never zero-scoring) those whose models cannot be loaded.

Each metric module is imported only when its metric is built, so importing this module is cheap and
does not import transformers. A world built on the core adds its metrics with :func:`register_metric`
from its plugin module (:mod:`imposter.plugins`): the toy world's ground truth is ``toy``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from os import PathLike
from typing import TYPE_CHECKING

from imposter.errors import ConfigError, MetricUnavailable
from imposter.plugins import load_plugins

if TYPE_CHECKING:
    import torch

    from imposter.metrics.base import Metric

# name -> (module, class); plugins add theirs with register_metric
METRIC_CLASSES = {
    "clip": ("imposter.metrics.clip", "ClipScore"),
    "dino": ("imposter.metrics.dino", "DinoScore"),
    "sscd": ("imposter.metrics.sscd", "SscdScore"),
    "phase": ("imposter.metrics.phase", "PhaseScore"),
}
GROUND_TRUTH: list[str] = []  # registered metrics that score against a pair's target image
# the metrics of the paper's Table 1; ground truth joins them when the pairs have targets
DEFAULT_METRICS = ("clip", "dino", "sscd", "phase")


def register_metric(name: str, module: str, class_name: str, ground_truth: bool = False) -> None:
    """Make ``name`` build ``module.class_name`` (with no arguments: a plugin's metric picks its own model).

    ``ground_truth``: it scores against a pair's target image, so the bench adds it wherever pairs have one."""
    METRIC_CLASSES[name] = (module, class_name)
    if ground_truth and name not in GROUND_TRUTH:
        GROUND_TRUTH.append(name)


def metric_names() -> tuple[str, ...]:
    """Every metric name, the plugins' included."""
    load_plugins()
    return tuple(METRIC_CLASSES)


def ground_truth_metrics() -> tuple[str, ...]:
    """The metrics that score against a pair's target image."""
    load_plugins()
    return tuple(GROUND_TRUTH)


def build_metrics(
    names: Sequence[str],
    device: str | torch.device = "cpu",
    *,
    clip_model: str | None = None,
    dino_model: str | None = None,
    dino_variant: str = "authors",
    sscd_model: str | PathLike[str] | None = None,
    batch_size: int = 16,
    log: Callable[[str], object] = print,
) -> list[Metric]:
    """Build the named metrics in order; one that is unavailable is left out and ``log`` says why.

    A model left as None is the metric's default (the one the paper's authors used); SSCD has none.
    """
    valid = metric_names()
    unknown = [name for name in names if name not in valid]
    if unknown:  # checked before any model is loaded, so a typo fails fast
        raise ConfigError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}; valid metrics are {', '.join(valid)}."
        )
    shared = {"device": device, "batch_size": batch_size}
    arguments = {
        "clip": {"model": clip_model, **shared},
        "dino": {"model": dino_model, "variant": dino_variant, **shared},
        "sscd": {"model_path": sscd_model, **shared},
        "phase": shared,
    }
    metrics = []
    for name in dict.fromkeys(names):  # each once, in the order given
        module, class_name = METRIC_CLASSES[name]
        metric_class = getattr(importlib.import_module(module), class_name)
        try:
            metrics.append(metric_class(**arguments.get(name, {})))
        except MetricUnavailable as error:
            log(f"skipping metric {name!r}: {error}")
    return metrics
