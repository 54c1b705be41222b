"""Error types for user mistakes: each names the problem and the fix in one sentence.

A message names the settings it is about as ``$name`` (the flag's dest: ``$k``, ``$source_prompt``), so that
each front end shows them in its own words: ``str(error)`` writes flags (``--k``), what the CLI prints on one
line before exiting non-zero; the app writes its page labels (``error.render(labels)``). Only the command
line's flags (``SETTINGS``) are settings: "$5" or "$HOME" in a user's text stays as written, and text
quoted with ``quoted()`` stays as typed whatever it spells.
"""

from __future__ import annotations

from collections.abc import Callable
from string import Template


def flag(setting: str) -> str:
    """The command-line flag of a setting: ``source_prompt`` -> ``--source-prompt``."""
    return "--" + setting.replace("_", "-")


# Every setting a message may name: the dests of the command line's flags, every subcommand's
# (tests/test_errors.py holds this list to the parser's, and every ``$name`` in the package to this list).
SETTINGS = frozenset(
    """
    adapter amp_scale base batch batch_size classifier_instances classifier_steps clip_model controlnet
    controlnet_scale controlnet_steps decoder_steps detect_pose device dino_model dino_variant driving
    driving_inversion driving_keypoints driving_mask driving_pose_map driving_pose_maps driving_prompt
    driving_strength dtype eta every examples family fit fps gradient_checkpointing guidance_normalization
    guidance_scale guidance_space guidance_until height host images instances k keypoint_steps lora_layers
    lr max_frames method methods metrics model n no_keypoints num_processes offload out overwrite pair_seed
    pairs phase_cutoff phase_distance phase_scale port precision process_index quiet rank rescore samples
    sanity_samples scene_strength seed seeds share source source_attention_from source_keypoints source_mask
    source_prompt split sscd_model steps target_prompt threads train_frames train_seed train_steps
    unet_steps vae_steps width
    """.split()
)


def quoted(text: str) -> str:
    """A user's text, quoted for a message: ``repr`` with each dollar sign escaped (``$$``), so that even "$k"
    in a caption is shown as typed, not as a flag."""
    return repr(text).replace("$", "$$")


class _Message(Template):
    idpattern = r"[a-z][a-z0-9_]*"  # a flag's dest
    flags = 0  # case-sensitive: "$K" is not a setting


class _Names(dict):
    """Every setting's name as ``name`` gives it (a dict for Template.substitute)."""

    def __init__(self, name: Callable[[str], str]):
        super().__init__()
        self.name = name

    def __missing__(self, setting: str) -> str:
        if setting not in SETTINGS:
            raise KeyError(setting)  # not a setting: safe_substitute leaves "$word" as written
        return self.name(setting)


class NamesSettings:
    """A message (``args[0]``) that names settings as ``$name``; ``str`` shows them as flags."""

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings the message names, in order: the first is the one it is about."""
        return tuple(dict.fromkeys(n for n in self._message().get_identifiers() if n in SETTINGS))

    @property
    def setting(self) -> str | None:
        """The setting the message is about (None: none in particular)."""
        return next(iter(self.settings), None)

    def render(self, name: Callable[[str], str] = flag) -> str:
        """The message with each setting written as ``name(setting)`` (default: its flag)."""
        return self._message().safe_substitute(_Names(name))  # "$5", "$dog" stay as they are

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
