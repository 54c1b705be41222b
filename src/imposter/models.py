"""Load a Stable Diffusion pipeline (hub id, local folder, or the bundled "toy"), and pick device and dtype."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import ConfigError, ModelLoadError

TOY = "toy"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def toy_checkpoint() -> Path:
    """Folder of the bundled toy-world pipeline (trained by ``imposter toy train``)."""
    return Path(__file__).parent / "toyworld" / "checkpoint"


def resolve_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ConfigError(
                f"--device {device!r} is not a torch device (use cpu, cuda, cuda:1, mps)"
            ) from err
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        return resolved
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` (a torch.dtype, or a name: "float16", "torch.float16") if given, else bf16 (or fp16) on
    CUDA and float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ConfigError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype}")
        return dtype
    if dtype:
        name = str(dtype).removeprefix("torch.")
        if name not in DTYPES:
            raise ConfigError(f"--dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.sep * 2 in model or model.count("/") > 1 or "\\" in model


def load_pipeline(
    model: str,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    log: Callable[[str], object] = print,
):
    """A ``StableDiffusionPipeline`` from a hub id, a local diffusers folder, or ``"toy"``, frozen and on ``device``.

    Nothing is downloaded unless ``model`` is a hub id; weights load from safetensors only; the safety
    checker is off (as in the authors' code). The scheduler becomes DDIM with the model's own betas.
    """
    from diffusers import StableDiffusionPipeline

    device = resolve_device(str(device) if device is not None else None)
    dtype = dtype or resolve_dtype(None, device)
    kwargs = dict(dtype=dtype, use_safetensors=True, safety_checker=None, requires_safety_checker=False)
    source = toy_checkpoint() if model == TOY else Path(model).expanduser()
    if model == TOY and not (source / "model_index.json").exists():
        raise ModelLoadError(f"the bundled toy model is missing at {source}; reinstall imposter-diffusion")
    if source.exists():
        if not (source / "model_index.json").is_file():
            raise ModelLoadError(
                f"{source} is not a diffusers pipeline folder (no model_index.json); "
                "save one with pipe.save_pretrained(folder) or pass a hub id"
            )
        try:
            pipe = StableDiffusionPipeline.from_pretrained(source, local_files_only=True, **kwargs)
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"could not load the pipeline in {source}: {first_line(err)}") from err
    elif _looks_like_path(model):
        raise ModelLoadError(
            f"model folder not found: {model} (check the path, or pass a hub id like org/name)"
        )
    else:
        try:
            pipe = StableDiffusionPipeline.from_pretrained(model, **kwargs)
        except Exception as err:  # hub errors come in many types; all mean the same to the user
            raise ModelLoadError(
                f"could not load {model!r}: no local folder of that name, and the Hugging Face hub said: "
                f"{first_line(err)} (check the id and your connection, or pass a local folder)"
            ) from err
    return set_up_pipeline(pipe, ddim=True, log=log).to(device)


def set_up_pipeline(pipe, ddim: bool = True, log: Callable[[str], object] = print):
    """Freeze ``pipe`` for our use (no gradients, eval mode, no progress bars); with ``ddim`` its scheduler
    becomes DDIM with the model's own betas (the paper's sampler), said in one line if it was another."""
    if ddim:
        from diffusers import DDIMScheduler

        previous = type(pipe.scheduler).__name__
        pipe.scheduler = DDIMScheduler.from_config(
            pipe.scheduler.config, clip_sample=False, set_alpha_to_one=False
        )
        if previous != "DDIMScheduler":
            log(
                f"sampling with DDIM (the paper's sampler) instead of the checkpoint's {previous}; "
                "ImPoster.from_pipe(pipe) keeps a pipeline's own scheduler"
            )
    for part in (pipe.unet, pipe.vae, pipe.text_encoder):
        part.requires_grad_(False)
        part.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def vae_scale_factor(pipe) -> int:
    """Pixels per latent cell (8 for Stable Diffusion)."""
    return 2 ** (len(pipe.vae.config.block_out_channels) - 1)


def native_size(pipe) -> int:
    """The side the UNet was trained at, in pixels (512 for SD 2.1-base)."""
    return int(pipe.unet.config.sample_size) * vae_scale_factor(pipe)


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
