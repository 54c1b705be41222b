"""Pose maps through a ControlNet (DreamPose's way, as users do it today): load one, read a pose map, and
run the denoiser with the ControlNet's residuals.

diffusers' ``ControlNetModel`` (SD 1.x/2.x, SDXL) reads what the UNet reads plus a conditioning image, and
returns residuals that the UNet adds to its skip connections and middle block. ``controlled`` patches the
UNet's ``forward`` for the duration of a sampling run, so every call of the family's pipeline ``__call__``
(SD, SDXL) gets them, on the classifier-free guidance batch's both halves as diffusers'
ControlNet pipelines do (no guess mode).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelLoadError

if TYPE_CHECKING:  # torch is imported when a ControlNet is used, not when the command line starts
    import torch
    from PIL import Image

# Pose ControlNets in diffusers' format with safetensors weights that exist on the hub (late 2026)
EXAMPLES = {
    "sd": "lllyasviel/control_v11p_sd15_openpose (SD 1.5) or thibaud/controlnet-sd21-openpose-diffusers (SD 2.1)",
    "sdxl": "thibaud/controlnet-openpose-sdxl-1.0",
}


def load_controlnet(name: str, unet, family_name: str, device: torch.device):
    """A ControlNet from a hub id or a local diffusers folder (safetensors only), in the UNet's dtype on
    ``device`` (where the UNet runs: under model CPU offload its weights rest on the CPU, the ControlNet's
    stay on the GPU); a one-line error when it cannot be read or does not fit the UNet."""
    if family_name not in EXAMPLES:
        raise ConfigError(
            f"$controlnet works with SD 1.x/2.x and SDXL checkpoints (diffusers' ControlNetModel); "
            f"this is a {family_name} model: use $method imposter"
        )
    from diffusers import ControlNetModel

    from .models import first_line

    try:
        controlnet = ControlNetModel.from_pretrained(name, torch_dtype=unet.dtype, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"$controlnet {name} could not be loaded ({first_line(err)}); give a hub id or a local "
            f"diffusers ControlNet folder with safetensors weights, e.g. {EXAMPLES[family_name]}"
        ) from err
    ours, theirs = unet.config.cross_attention_dim, controlnet.config.cross_attention_dim
    if ours != theirs:
        raise ModelLoadError(
            f"$controlnet {name} was trained for another base model (text width {theirs}, this model's "
            f"{ours}); use a ControlNet for this checkpoint's family, e.g. {EXAMPLES[family_name]}"
        )
    return controlnet.to(device).eval().requires_grad_(False)


def controlnet_for(unet, vae_scale_factor: int, width: int):
    """diffusers' ``ControlNetModel.from_unet`` of ``unet`` (its encoder copied, zero convolutions out), with a
    conditioning embedding that downsamples the map by ``vae_scale_factor`` to the latents, its first layer
    ``width`` channels wide (doubling at each downsampling)."""
    from diffusers import ControlNetModel

    downsamples = max(1, int(vae_scale_factor).bit_length() - 1)  # 2 ** downsamples == vae_scale_factor
    channels = tuple(width * 2**i for i in range(downsamples + 1))
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=channels)


def pose_map_tensor(
    image: Image.Image | Sequence[Image.Image], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], as diffusers' ControlNet pipelines hand a conditioning image over; (N, 3, H, W)
    for a list of N maps (one per row of a batch: animate's frames)."""
    import numpy as np
    import torch
    from PIL import Image

    images = [image] if isinstance(image, Image.Image) else list(image)
    pixels = torch.from_numpy(
        np.stack([np.asarray(i.convert("RGB"), dtype=np.float32) / 255.0 for i in images])
    )
    return pixels.permute(0, 3, 1, 2).to(device, dtype)


@contextlib.contextmanager
def controlled(unet, controlnet, pose_map: torch.Tensor, scale: float) -> Iterator[None]:
    """Within the block, every call of ``unet`` adds ``controlnet``'s residuals for ``pose_map`` at ``scale``
    (diffusers' ``controlnet_conditioning_scale``): (1, 3, H, W) for every row, or (B, 3, H, W) one per row of a
    batch of B (repeated over classifier-free guidance's unconditional and conditional halves)."""
    own = "forward" in vars(unet)  # accelerate's offload hooks set an instance forward of their own
    original = unet.forward

    def forward(sample, timestep, encoder_hidden_states=None, *args: Any, **kwargs: Any):
        condition = pose_map.to(sample.device, sample.dtype).repeat(sample.shape[0] // len(pose_map), 1, 1, 1)
        down, middle = controlnet(
            sample,
            timestep,
            encoder_hidden_states=encoder_hidden_states,
            controlnet_cond=condition,
            conditioning_scale=scale,
            added_cond_kwargs=kwargs.get("added_cond_kwargs"),
            return_dict=False,
        )
        return original(
            sample,
            timestep,
            encoder_hidden_states,
            *args,
            down_block_additional_residuals=down,
            mid_block_additional_residual=middle,
            **kwargs,
        )

    unet.forward = forward
    try:
        yield
    finally:
        if own:
            unet.forward = original
        else:
            del unet.forward  # the class's forward again


def detect_pose(image: Image.Image, detector: str) -> Image.Image:
    """The driving image's OpenPose body map: controlnet_aux's own (``openpose``), or the joints another
    detector finds drawn as OpenPose draws them (``imposter.pose_detection.openpose_map``). A world's own
    detector (``toy``) is refused: its ControlNet reads that world's maps, which its pairs carry."""
    from .pose_detection import DETECTORS, check_detector, detect_keypoints, openpose_detector, openpose_map

    check_detector(detector)
    if detector == "openpose":
        return openpose_detector("draw the map yourself and pass $driving_pose_map FILE")(image).resize(
            image.size
        )
    if detector not in DETECTORS:
        raise ConfigError(
            f"$detect_pose {detector} finds keypoints for imposter; pose-control on that world reads "
            "its own maps: pass $driving_pose_map FILE (imposter toy pairs writes them)"
        )
    return openpose_map(detect_keypoints(image, detector, "driving")[0], image.size)
