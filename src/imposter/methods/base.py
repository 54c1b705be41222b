"""The small interface every method implements, and what a method learns for one pair.

A method has two halves, so that one training run can serve many samplings:

- ``personalize(engine, pair, finetune)`` learns something from the pair (LoRA weights, a full UNet,
  text embeddings) and returns a :class:`Personalization`;
- ``sample(engine, pair, personalization, noise, sampling)`` denoises a batch of noise into latents.

Methods that learn the same ``finetune_kind`` (``FinetuneConfig.kind``) share one personalization (ImPoster,
Baseline++ and the ablations all sample from the same LoRA). ``fixed_sampling`` lists the settings that define a method
(Baseline++ is K = 0 with no guidance); the CLI refuses flags that contradict them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import FinetuneConfig, SamplingConfig, flag_for
from ..errors import ConfigError
from ..personalizations import Personalization

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair


class Method(ABC):
    """A way to make the source subject perform the driving action."""

    name: str
    description: str
    # what defines the method (None included: "every frequency"); a contradicting flag is an error
    fixed_sampling: Mapping[str, Any] = {}
    fixed_finetune: Mapping[str, Any] = {}
    finetune_defaults: Mapping[str, Any] = {}  # the method's own defaults; the family's and the user's win
    sampling_defaults: Mapping[str, Any] = {}
    # model families it runs on (imposter.families); the peers and the authors' release are SD 1.x/2.x methods
    families: tuple[str, ...] = ("sd",)
    # what --detect-pose finds for it when no file gives it: both images' body keypoints (imposter),
    # the driving image's pose map (pose-control)
    needs_keypoints = False
    needs_pose_map = False

    @property
    def finetune_kind(self) -> str:
        """What this method learns (``FinetuneConfig.kind``): methods of one kind can share a fine-tune."""
        return self.fixed_finetune.get("kind", FinetuneConfig.kind)

    def finetune_config(self, config: FinetuneConfig) -> FinetuneConfig:
        """``config`` with what defines this method (the last layer of ``imposter.settings.resolve``), validated."""
        return replace(config, **self.fixed_finetune).validate()

    def sampling_config(self, config: SamplingConfig) -> SamplingConfig:
        """``config`` with what defines this method (the last layer of ``imposter.settings.resolve``), validated."""
        return replace(config, **self.fixed_sampling).validate()

    def check_flags(self, named: Mapping[str, Mapping[str, Any]]) -> None:
        """ConfigError if a setting the user named (a flag, a page field) contradicts what defines this method.

        ``named`` is ``{"sampling": {field: value}, "finetune": {field: value}}``.
        """
        for section, fixed in (("sampling", self.fixed_sampling), ("finetune", self.fixed_finetune)):
            for name, value in named.get(section, {}).items():
                if name in fixed and value != fixed[name]:
                    raise ConfigError(
                        f"{flag_for(section, name)} {value} contradicts $method {self.name}, which uses "
                        f"{name} = {fixed[name]}; drop the flag or choose $method imposter-guided"
                    )

    def check_model(self, engine: Engine) -> None:
        """ConfigError unless this method runs on ``engine``'s model (by default: on its family)."""
        if engine.family.name not in self.families:
            raise ConfigError(
                f"$method {self.name} runs on SD 1.x/2.x checkpoints only and this model is "
                f"{engine.family.title}; use $method imposter, baseline++ or an ablation"
            )

    def check_pair(self, pair: PreparedPair) -> None:
        """ConfigError unless ``pair`` holds what this method reads beyond the images and captions (a pose
        map, keypoints); run before a job opens its folder or trains anything. Most methods read nothing more."""
        return None

    @abstractmethod
    def personalize(
        self, engine: Engine, pair: PreparedPair, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        """Learn from the pair."""

    @abstractmethod
    def load_personalization(self, directory: Path, metadata: dict[str, Any]) -> Personalization:
        """Read back what ``Personalization.save`` wrote."""

    @abstractmethod
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
        """Denoise ``noise`` (B, C, h, w) into clean latents; the personalization is already active.

        ``generators``: one per row, for the sampler's own noise (DDIM with eta > 0); None: torch's global one.
        """
