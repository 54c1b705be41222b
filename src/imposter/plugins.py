"""Named models, and how the worlds built on the core plug theirs in.

A named model is a checkpoint a ``--model`` name resolves to without a path or a hub id (``"toy"``, the
toy world's bundled pipeline). The core knows them only through this registry and never imports the
packages that ship them: such a package (the toy world is one) has a plugin module that, when imported,
calls :func:`register_model` for each checkpoint it ships and
:func:`imposter.metrics.registry.register_metric` for each metric it brings.

The plugin modules are named by string in ``PLUGINS`` and imported on the first lookup of a model or a
metric name, so ``ImPoster.from_pretrained("toy")``, the CLI, the bench and the app resolve a name alike.
A plain table rather than a Python entry point group: entry points live in the install's metadata, so a
new one would reach an editable install only after a reinstall, and a missing one would fail far from
its cause. Another package plugs in by calling :func:`register_model` (and ``register_metric``) itself,
or by adding its module to ``PLUGINS`` before the first lookup. This module imports nothing heavy (no
torch), so the command line can list what plugins bring while it parses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PLUGINS = ["imposter.toyworld.plugin"]  # modules imported on the first lookup; each registers what it ships


@dataclass(frozen=True)
class NamedModel:
    """A checkpoint known by name: where it lives and what the core should know of it."""

    name: str
    folder: Path  # a diffusers pipeline folder
    # scored by default by the bench (None: the paper's metrics); a ground-truth metric only where pairs have targets
    default_metrics: tuple[str, ...] | None = None
    # captions -> one line on words this model cannot know (None when all are known); warned when a pair is prepared
    vocabulary_notice: Callable[[Sequence[str]], str | None] | None = None
    add_ons: tuple[str, ...] = ()  # subfolders only some methods read, left out of the weights digest
    # the keypoint detector (--detect-pose) used where a method needs keypoints that no file and no flag gives
    detector: str | None = None


NAMED_MODELS: dict[str, NamedModel] = {}
_plugins_loaded = False


def register_model(model: NamedModel) -> None:
    """Make ``model.name`` resolve to ``model`` wherever a model is named."""
    NAMED_MODELS[model.name] = model


def load_plugins() -> None:
    """Import the modules in PLUGINS, once, so that what they register is known."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    for module in PLUGINS:  # a plugin that fails to import raises here, and again on the next lookup
        importlib.import_module(module)
    _plugins_loaded = True


def named_model(name: str) -> NamedModel | None:
    """The named model ``name`` is, or None (a local folder or a hub id)."""
    load_plugins()
    return NAMED_MODELS.get(name)


@dataclass(frozen=True)
class KeypointDetector:
    """A body-keypoint detector a world brings (``--detect-pose NAME``): ``target`` ("module:function") maps a
    PIL image to its figure's joints, named as :data:`imposter.retarget.JOINTS`, in pixels; imported on first
    use."""

    name: str
    target: str


KEYPOINT_DETECTORS: dict[str, KeypointDetector] = {}


def register_keypoint_detector(detector: KeypointDetector) -> None:
    """Make ``--detect-pose detector.name`` run ``detector``."""
    KEYPOINT_DETECTORS[detector.name] = detector


def keypoint_detector(name: str) -> KeypointDetector | None:
    """The detector a plugin registered as ``name``, or None."""
    load_plugins()
    return KEYPOINT_DETECTORS.get(name)


def keypoint_detector_names() -> tuple[str, ...]:
    load_plugins()
    return tuple(KEYPOINT_DETECTORS)
