"""Error types for user mistakes: each names the problem and the fix in one sentence.

The CLI prints ``str(error)`` on one line and exits non-zero; nothing else should need a traceback.
"""


class ImposterError(Exception):
    """Base of every error that a user can fix; its message says how."""


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
