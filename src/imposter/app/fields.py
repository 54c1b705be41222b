"""The page's fields: their labels, and their values as the library's (settings, captions, seeds).

A library error names its settings (``$k``); the page writes each as the label of its field, so that an error
says "K 4 must be ..." where the CLI says "--k 4 must be ..." (``imposter.errors``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import ImposterError, NamesSettings, flag
from ..methods import get_method
from ..methods.base import Method
from ..prompts import check_caption, compose_target_prompt

# The page's labels: tests and users find the fields by them.
SOURCE_IMAGE = "Source image"
SOURCE_CAPTION = "Source caption"
DRIVING_IMAGE = "Driving image"
DRIVING_FRAMES = "Driving video or frames"
DRIVING_CAPTION = "Driving caption"
TARGET_CAPTION = "Target caption"
METHOD = "Method"
FINETUNE_STEPS = "Fine-tuning steps"
STEPS = "Denoising steps"
K = "K"
AMP_SCALE = "Amplitude scale"
PHASE_SCALE = "Phase scale"
GUIDANCE_SCALE = "Guidance scale"
DRIVING_STRENGTH = "Driving strength (0: off)"
SEEDS = "Seeds"
SEED = "Seed"
EVERY = "Every Nth frame"
MAX_FRAMES = "Max frames (0: all)"
SOURCE_KEYPOINTS = "Source keypoints (OpenPose JSON)"
DRIVING_KEYPOINTS = "Driving keypoints (OpenPose JSON)"
DRIVING_FRAMES_KEYPOINTS = "Driving frames' keypoints (OpenPose JSON, one per frame)"
DETECT_POSE = "Detect the keypoints not uploaded"
NO_DETECTOR = "no"  # the Detect dropdown's "off"

# The sampling fields of the page -> SamplingConfig fields (the fine-tuning steps are FinetuneConfig.steps).
SAMPLING_FIELDS = {
    STEPS: "steps",
    K: "k",
    AMP_SCALE: "amp_scale",
    PHASE_SCALE: "phase_scale",
    GUIDANCE_SCALE: "guidance_scale",
    DRIVING_STRENGTH: "driving_strength",
}
# fields whose "off" (None in SamplingConfig) the page shows as 0
OFF_AS_ZERO = {"driving_strength"}
# A setting (as errors name it: the flag's dest) -> the page's field, so that a library error names what the
# user sees; settings the page does not show keep their flag.
LABELS = {
    "source": SOURCE_IMAGE,
    "driving": DRIVING_IMAGE,
    "source_prompt": SOURCE_CAPTION,
    "driving_prompt": DRIVING_CAPTION,
    "target_prompt": TARGET_CAPTION,
    "method": METHOD,
    "train_steps": FINETUNE_STEPS,
    "steps": STEPS,
    "k": K,
    "amp_scale": AMP_SCALE,
    "phase_scale": PHASE_SCALE,
    "guidance_scale": GUIDANCE_SCALE,
    "driving_strength": DRIVING_STRENGTH,
    "seeds": SEEDS,
    "every": EVERY,
    "max_frames": MAX_FRAMES,
    "source_keypoints": SOURCE_KEYPOINTS,
    "driving_keypoints": DRIVING_KEYPOINTS,
    "detect_pose": DETECT_POSE,
}


def page_message(message: Exception | Warning, labels: Mapping[str, str] = LABELS) -> str:
    """A library error's or warning's message on one line, its settings written as the page's labels."""
    if isinstance(message, NamesSettings):
        return " ".join(message.render(lambda setting: labels.get(setting, flag(setting))).split())
    return " ".join(str(message).split())


@contextlib.contextmanager
def page_errors(labels: Mapping[str, str] = LABELS) -> Iterator[None]:
    """Library errors as page errors, and the library's warnings (a converted image...) as page warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        except ImposterError as err:
            raise gr.Error(page_message(err, labels), print_exception=False) from err
        finally:
            for warning in caught:
                if issubclass(warning.category, UserWarning):
                    gr.Warning(page_message(warning.message, labels))


def required(value: Any, label: str) -> Any:
    """``value``, or a page error saying the field ``label`` is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise gr.Error(f"{label} is empty; fill it in", print_exception=False)
    return value


def parse_seeds(text: str, label: str = SEEDS) -> list[int]:
    """ "0 1 2" or "0, 1, 2" -> [0, 1, 2]; a page error naming the field otherwise."""
    words = str(required(text, label)).replace(",", " ").split()
    try:
        return [int(word) for word in words]
    except ValueError:
        raise gr.Error(
            f"{label} must be whole numbers separated by spaces, e.g. 0 1 2; got {text!r}",
            print_exception=False,
        ) from None


def captions(source_caption: str, driving_caption: str, target_caption: str) -> tuple[str, str, str]:
    """The three captions checked; a blank target caption is composed from the other two."""
    source = check_caption(source_caption, "$source_prompt")
    driving = check_caption(driving_caption, "$driving_prompt")
    if target_caption and target_caption.strip():
        return source, driving, check_caption(target_caption, "$target_prompt")
    return source, driving, compose_target_prompt(source, driving)


@dataclass
class Settings:
    """The method and the fine-tuning and sampling settings the page names (the job resolves the rest)."""

    method: Method
    finetune: dict[str, Any]
    sampling: dict[str, Any]


def page_settings(method_name: str, finetune_steps: Any, *sampling_values: Any) -> Settings:
    """The method and the page's values (the sampling values in SAMPLING_FIELDS' order)."""
    sampling = {
        field: required(value, label)
        for (label, field), value in zip(SAMPLING_FIELDS.items(), sampling_values, strict=True)
    }
    sampling["steps"], sampling["k"] = int(sampling["steps"]), int(sampling["k"])
    for field in OFF_AS_ZERO:
        sampling[field] = sampling[field] or None  # 0: off
    finetune = {"steps": int(required(finetune_steps, FINETUNE_STEPS))}
    return Settings(get_method(required(method_name, METHOD)), finetune, sampling)
