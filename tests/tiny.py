"""Tiny Stable Diffusion pipelines built in code (no downloads), in the style of diffusers' own tests.

The builders live in :mod:`imposter.testing`, shared with the benchmarks; these are the tests' defaults.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from imposter.testing import TINY_SD, save_random_pipeline, sd_components


def tiny_components(tmp: Path, unet_channels: tuple[int, int] = TINY_SD.unet_channels, **options):
    """UNet, VAE, text encoder, tokenizer and DDIM scheduler, a few thousand parameters each.

    ``options``: seed, prediction_type, pad_token (SD 2.x pads with "!"), as :func:`sd_components` takes.
    """
    return sd_components(tmp, replace(TINY_SD, unet_channels=unet_channels), **options)


def tiny_pipeline_dir(tmp: Path, unet_channels: tuple[int, int] = TINY_SD.unet_channels, **options) -> Path:
    """Save a tiny SD pipeline with ``save_pretrained`` (safetensors) and return its folder."""
    shape = replace(TINY_SD, unet_channels=unet_channels)
    return save_random_pipeline("sd", tmp, "tiny-sd", shape=shape, **options)


def random_image(path: Path | None = None, size=(64, 64), seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random RGB image (saved to ``path`` if given)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
    if mode != "RGB":
        image = image.convert(mode)
    if path is not None:
        image.save(path)
    return image


class Killed(Exception):
    """A training run killed mid-way (raised from a forward hook)."""


def assert_resumes_exactly(run, folder: Path, kill_at_call: int = 4, checkpoint_step: int = 2) -> None:
    """``run(checkpoints, denoiser_hook)`` trains from scratch into ``checkpoints`` and returns (losses, weights);
    killed at the denoiser's ``kill_at_call``-th forward (after the checkpoint at ``checkpoint_step``), then
    run again, it must end with the losses and weights of an uninterrupted run."""
    import json

    import pytest
    import torch

    straight_losses, straight = run(folder / "straight", None)
    calls = {"n": 0}

    def kill(module, args):
        calls["n"] += 1
        if calls["n"] == kill_at_call:
            raise Killed

    with pytest.raises(Killed):
        run(folder / "resumed", kill)
    assert json.loads((folder / "resumed" / "progress.json").read_text())["step"] == checkpoint_step
    resumed_losses, resumed = run(folder / "resumed", None)
    assert resumed_losses == straight_losses
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
