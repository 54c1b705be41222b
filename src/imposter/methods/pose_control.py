"""``pose-control``: DreamPose's way (Karras et al., ICCV 2023) as users run it today, as a peer.

DreamPose conditions a diffusion model on a pose map of the target frame and fine-tunes it on the subject's
own image; with today's tools that is a pose ControlNet (OpenPose or DensePose) plus a subject LoRA. Here:
a LoRA learned from the *source* pair alone (the subject; nothing of the driving image is learned), then
the target caption at every step, no frequency guidance, with a ControlNet fed the *driving* image's pose
map (``--controlnet``, ``--driving-pose-map``). The pose comes from the map, not from the driving pixels:
this row measures what "no keypoints" costs, or buys, against a method that has them.

``pose-control-oracle`` (toy world only: it needs the ground truth's pose map, the pairs' ``target_pose_map``)
feeds the ControlNet the map of the *source's own body* in the driving pose: retargeting solved. It is the
ceiling of what a perfect retargeter could give, and a check on the ControlNet itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..config import SamplingConfig
from ..controlnet import EXAMPLES, controlled, pose_map_tensor
from ..errors import ConfigError
from ..families.base import SamplingPlan
from ..models import model_source
from ..personalizations import Personalization
from .imposter import NO_GUIDANCE, SubjectLoraMethod

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair

NEEDS_MAP = {
    "driving": "$method pose-control needs $driving_pose_map FILE: an OpenPose or DensePose render of the "
    "driving image; or detect one with $detect_pose openpose, rtmpose, animal or auto",
    "target": "$method pose-control-oracle needs the ground truth's pose map (a toy-world pairs.csv's "
    "target_pose_map column: imposter toy pairs writes it)",
}


class PoseControlMethod(SubjectLoraMethod):
    """A subject LoRA on the source, then the target caption through a pose ControlNet on the driving map."""

    families = ("sd", "sdxl")  # diffusers' ControlNetModel; FLUX.1's ControlNets have another interface

    def __init__(self, pose_map: str = "driving") -> None:
        if pose_map == "driving":
            name, what = "pose-control", "the driving image's pose map"
        else:
            name, what = "pose-control-oracle", "the ground truth's pose map (toy world: retargeting solved)"
        description = f"peer (DreamPose's way): subject LoRA on the source, then the target caption with a pose ControlNet fed {what}"
        super().__init__(name, description, {"k": 0, **NO_GUIDANCE})
        self.pose_map = pose_map  # which of the pair's pose maps the ControlNet reads: "driving" or "target"
        # a detector can draw the driving image's pose map, not the truth's
        self.needs_pose_map = pose_map == "driving"

    def pose_map_of(self, pair: PreparedPair):
        """The pair's pose map this method reads; a one-line error when the pair has none."""
        image = getattr(pair, f"{self.pose_map}_pose_map")
        if image is None:
            raise ConfigError(NEEDS_MAP[self.pose_map])
        return image

    def check_pair(self, pair: PreparedPair) -> None:
        self.pose_map_of(pair)

    def check_model(self, engine: Engine) -> None:
        if engine.family.name not in self.families:
            raise ConfigError(
                f"$method {self.name} runs on SD 1.x/2.x and SDXL (diffusers' ControlNetModel); this model "
                f"is {engine.family.title}, whose ControlNets are not supported yet: use $method imposter"
            )
        if getattr(engine, "controlnet", None) is None:
            shipped = model_source(engine.model) / "controlnet"  # the toy models carry theirs
            if (shipped / "config.json").is_file():
                engine.load_controlnet(str(shipped))
                return
            example = EXAMPLES[engine.family.name]
            raise ConfigError(
                f"$method {self.name} needs $controlnet ID_OR_FOLDER, a pose ControlNet for this base "
                f"model, e.g. {example}"
            )

    def training_data(self, engine: Engine, pair: PreparedPair):
        """The source pair alone: the subject, nothing of the driving image."""
        self.pose_map_of(pair)  # a missing map fails before the fine-tune, not after it
        return super().training_data(engine, pair)

    def sample(
        self,
        engine: Engine,
        pair: PreparedPair,
        personalization: Personalization,
        noise: torch.Tensor,
        sampling: SamplingConfig,
        progress: bool = True,
        generators: Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        pose = pose_map_tensor(self.pose_map_of(pair), noise.device, engine.dtype)
        target = engine.conditioning(pair, pair.target_prompt)
        plan = SamplingPlan(
            lambda index: target, engine.conditioning(pair, ""), sampling, None, generators, progress
        )
        with controlled(engine.denoiser, engine.controlnet, pose, sampling.controlnet_scale):
            return engine.family.sample(engine.pipe, noise, plan)
