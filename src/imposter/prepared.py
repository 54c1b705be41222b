"""What methods and personalizations see: a prepared pair, and the engine as a small protocol.

A leaf module (it imports nothing of ours at run time), so that ``engine`` can import the methods
without the methods importing ``engine`` back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch
    from PIL import Image


@dataclass
class PreparedPair:
    """A source/driving pair fitted to the model's size, with its latents and caption embeddings cached."""

    source_image: Image.Image
    driving_image: Image.Image
    source_prompt: str
    driving_prompt: str
    target_prompt: str
    source_latents: torch.Tensor  # (1, C, h, w), float32, scaled by the VAE's scaling factor
    driving_latents: torch.Tensor
    embeds: dict[str, torch.Tensor] = field(default_factory=dict)  # caption -> (1, L, D)
    pooled: dict[str, torch.Tensor] = field(default_factory=dict)  # caption -> (1, P) (SDXL, FLUX.1)
    # pose maps, fitted like the images: the driving image's (pose-control's ControlNet input) and, on the
    # toy world, the ground truth's (pose-control-oracle's)
    # a list: one per driving latent (animate)
    driving_pose_map: Image.Image | list[Image.Image] | None = None
    target_pose_map: Image.Image | None = None
    # body keypoints of both images (imposter.retarget's named joints, in the fitted images' pixels) and,
    # where both are given, the source figure moved into the driving pose (imposter's start)
    source_keypoints: dict[str, Any] | None = None
    driving_keypoints: dict[str, Any] | None = None
    retargeted_image: Image.Image | None = None
    retargeted_latents: torch.Tensor | None = None
    # where the moved figure lies in each retargeted picture, (N, H, W) bool (retarget.moved_figure)
    retargeted_figure: Any = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.source_image.size


class Engine(Protocol):
    """The part of :class:`imposter.engine.ImPoster` a method uses: the pipeline, its family, the encoders."""

    pipe: Any
    family: Any  # an ``imposter.families.base.Family``

    @property
    def denoiser(self) -> Any:
        """The denoiser (the UNet, or FLUX.1's transformer)."""
        ...

    @property
    def scheduler(self) -> Any: ...

    @property
    def device(self) -> torch.device: ...

    def conditioning(self, pair: PreparedPair, prompt: str) -> Any:
        """Cached :class:`imposter.families.base.Conditioning` of ``prompt`` (pooled embeddings included)."""
        ...

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """VAE latents (N, C, h, w) of the images, float32, scaled."""
        ...

    def training_loss(self) -> Any:
        """The model family's training loss (a ``families.losses.TrainingLoss``)."""
        ...
