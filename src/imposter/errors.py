"""Error types for user mistakes: each names the problem and the fix in one sentence.

A message names the settings it is about as ``$name`` (the flag's dest: ``$k``, ``$source_prompt``), so that
each front end shows them in its own words: ``str(error)`` writes flags (``--k``), what the CLI prints on one
line before exiting non-zero; the app writes its page labels (``error.render(labels)``). A literal dollar
sign is ``$$`` (one not before a name stays as it is).
"""

from __future__ import annotations

from collections.abc import Callable
from string import Template


def flag(setting: str) -> str:
    """The command-line flag of a setting: ``source_prompt`` -> ``--source-prompt``."""
    return "--" + setting.replace("_", "-")


class _Message(Template):
    idpattern = r"[a-z][a-z0-9_]*"  # a flag's dest
    flags = 0  # case-sensitive: "$K" is not a setting


class _Names(dict):
    """Every setting's name as ``name`` gives it (a dict for Template.substitute)."""

    def __init__(self, name: Callable[[str], str]):
        super().__init__()
        self.name = name

    def __missing__(self, setting: str) -> str:
        return self.name(setting)


class NamesSettings:
    """A message (``args[0]``) that names settings as ``$name``; ``str`` shows them as flags."""

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings the message names, in order: the first is the one it is about."""
        return tuple(dict.fromkeys(self._message().get_identifiers()))

    @property
    def setting(self) -> str | None:
        """The setting the message is about (None: none in particular)."""
        return next(iter(self.settings), None)

    def render(self, name: Callable[[str], str] = flag) -> str:
        """The message with each setting written as ``name(setting)`` (default: its flag)."""
        return self._message().safe_substitute(_Names(name))  # a lone "$5" stays as it is

    def _message(self) -> _Message:
        return _Message(str(self.args[0]) if self.args else "")

    def __str__(self) -> str:
        return self.render()


class ImposterError(NamesSettings, Exception):
    """Base of every error that a user can fix; its message says how."""


class ImposterWarning(NamesSettings, UserWarning):
    """A warning about a setting (a caption truncated, a guidance space that cannot apply), named like errors'."""


class InputImageError(ImposterError):
    """An input image is missing, unreadable, or unusable (too small)."""


class PromptError(ImposterError):
    """A caption is empty, or a target prompt cannot be composed from the captions."""


class ConfigError(ImposterError):
    """A setting is out of range or inconsistent (K > steps, negative scales, bad size, unknown method)."""


class ModelLoadError(ImposterError):
    """A model could not be loaded (missing folder, unreachable hub, not a diffusers checkpoint)."""


class NumericalError(ImposterError):
    """Latents became NaN or infinite during sampling or fine-tuning."""


class DataError(ImposterError):
    """A pairs file or results folder is malformed (missing column, missing image, duplicate id)."""


class MetricUnavailable(ImposterError):
    """A metric's model cannot be loaded; the metric is skipped, never scored as 0."""
