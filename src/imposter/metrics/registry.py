"""Build metrics by name, skipping (never zero-scoring) those whose models cannot be loaded.

Each metric module is imported only when its metric is built, so importing this module is cheap and
does not import transformers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from os import PathLike
from typing import TYPE_CHECKING

from imposter.errors import ConfigError, MetricUnavailable

if TYPE_CHECKING:
    import torch

    from imposter.metrics.base import Metric

# name -> (module, class)
METRIC_CLASSES = {
    "clip": ("imposter.metrics.clip", "ClipScore"),
    "dino": ("imposter.metrics.dino", "DinoScore"),
    "sscd": ("imposter.metrics.sscd", "SscdScore"),
    "phase": ("imposter.metrics.phase", "PhaseScore"),
    "toy": ("imposter.metrics.toy", "ToyGroundTruth"),
}
METRIC_NAMES = tuple(METRIC_CLASSES)
# the metrics of the paper's Table 1; "toy" (ground truth) joins them when the pairs have targets
DEFAULT_METRICS = ("clip", "dino", "sscd", "phase")


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
    unknown = [name for name in names if name not in METRIC_CLASSES]
    if unknown:  # checked before any model is loaded, so a typo fails fast
        raise ConfigError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}; valid metrics are {', '.join(METRIC_NAMES)}."
        )
    shared = {"device": device, "batch_size": batch_size}
    arguments = {
        "clip": {"model": clip_model, **shared},
        "dino": {"model": dino_model, "variant": dino_variant, **shared},
        "sscd": {"model_path": sscd_model, **shared},
        "phase": shared,
        "toy": {},  # pure numpy on small images: no model, no device
    }
    metrics = []
    for name in dict.fromkeys(names):  # each once, in the order given
        module, class_name = METRIC_CLASSES[name]
        metric_class = getattr(importlib.import_module(module), class_name)
        try:
            metrics.append(metric_class(**arguments[name]))
        except MetricUnavailable as error:
            log(f"skipping metric {name!r}: {error}")
    return metrics
