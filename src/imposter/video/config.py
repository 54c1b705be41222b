"""Settings of an ``animate`` run: a dataclass (written as ``config.json``) and its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import FinetuneConfig, SamplingConfig
from ..errors import ConfigError
from .frames import check_selection

DEFAULT_FPS = 8.0  # for a folder of frames, which carries no timing
# Frames denoised together when --batch-size is not given: all of a long video at once would not fit
# a GPU at 512 px (each frame is two UNet inputs with classifier-free guidance).
DEFAULT_FRAME_BATCH = 8
# Driving frames in the fine-tune: a few evenly spaced frames cover the sequence's poses; every frame
# of a long video in every step would multiply the fine-tune's cost by the video's length.
DEFAULT_TRAIN_FRAMES = 4


@dataclass(frozen=True)
class AnimateConfig:
    """Everything an ``animate`` run used; written as ``config.json`` next to its frames."""

    model: str
    source: str
    driving: str  # a folder of frames, a video file or a GIF
    source_prompt: str
    driving_prompt: str
    target_prompt: str = ""  # "": composed from the captions
    method: str = "imposter"
    seed: int = 0  # the initial noise of every frame
    every: int = 1  # keep one driving frame in this many
    max_frames: int | None = None  # stop after this many kept frames
    train_frames: int = DEFAULT_TRAIN_FRAMES
    fps: float | None = None  # None: the video's rate divided by ``every``, or DEFAULT_FPS for a folder
    fit: str = "pad"
    height: int | None = None
    width: int | None = None
    # the user's until the job resolves them, as RunConfig's
    finetune: FinetuneConfig | Mapping[str, Any] = field(default_factory=FinetuneConfig)
    sampling: SamplingConfig | Mapping[str, Any] = field(default_factory=SamplingConfig)
    adapter: str | None = None
    # pose-control: a pose ControlNet, and the driving frames' pose maps (a folder or video, one map per
    # driving frame, kept with the same $every and $max_frames)
    controlnet: str | None = None
    driving_pose_maps: str | None = None
    # imposter: the source's body keypoints (OpenPose JSON) and the driving frames' (a folder of
    # OpenPose JSON files, one per driving frame, kept with the same $every and $max_frames)
    source_keypoints: str | None = None
    driving_keypoints: str | None = None
    # a matte of the source figure (None: told from a plain backdrop by colour)
    source_mask: str | None = None
    # keypoints not given are detected by this detector (imposter.pose_detection.detector_names())
    detect_pose: str | None = None
    device: str = ""
    dtype: str = ""

    def validate(self) -> AnimateConfig:
        """Raise ConfigError on an out-of-range value; return self."""
        check_selection(self.every, self.max_frames)
        if self.train_frames < 1:
            raise ConfigError(f"$train_frames must be >= 1, got {self.train_frames}")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"$fps must be > 0, got {self.fps}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)
