"""Load a pipeline of a supported family (hub id, local folder, or a named model such as "toy"), and pick
device and dtype."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import ConfigError, ModelLoadError
from .plugins import named_model

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def bundled_weights(model: str) -> str | None:
    """A digest of a named model's weights (None for other models), so that results made with an earlier
    bundled model are told from today's: its name alone does not change when it is retrained.

    Its add-ons (subfolders only some methods read, like the toy models' pose ControlNet) are left out, so
    that adding or retraining one leaves every other method's results valid."""
    named = named_model(model)
    if named is None:
        return None
    root, digest = named.folder, hashlib.sha256()
    for path in sorted(root.rglob("*.safetensors")):
        if path.relative_to(root).parts[0] in named.add_ons:
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def model_source(model: str) -> Path:
    """The local folder ``model`` names: a named model's, or the path as given."""
    named = named_model(model)
    return named.folder if named is not None else Path(model).expanduser()


def resolve_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ConfigError(
                f"$device {device!r} is not a torch device (use cpu, cuda, cuda:1, mps)"
            ) from err
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("$device cuda was asked for but no CUDA GPU is visible; use $device cpu")
        return resolved
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` (a torch.dtype, or a name: "float16", "torch.float16") if given, else bf16 (or fp16) on
    CUDA and float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ConfigError(f"$dtype must be one of {sorted(DTYPES)}, got {dtype}")
        return dtype
    if dtype:
        name = str(dtype).removeprefix("torch.")
        if name not in DTYPES:
            raise ConfigError(f"$dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or os.sep * 2 in model or model.count("/") > 1 or "\\" in model


def model_class_name(model: str, source: Path | None) -> str | None:
    """The ``_class_name`` in a checkpoint's ``model_index.json`` (a local folder, or fetched alone from the hub)."""
    if source is not None:
        return json.loads((source / "model_index.json").read_text()).get("_class_name")
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.load_config(model).get("_class_name")


def model_family(model: str):
    """The family of ``model`` (a hub id, a local folder or a named model) from its ``model_index.json``,
    without loading it."""
    from .families import family_for_class

    source = model_source(model)
    local = source if (source / "model_index.json").is_file() else None
    try:
        class_name = model_class_name(model, local)
    except Exception as err:  # hub errors come in many types; all mean the same to the user
        raise ModelLoadError(
            f"could not read the model_index.json of {model!r}: {first_line(err)} "
            "(check the id or the folder, and your connection)"
        ) from err
    return family_for_class(class_name, repr(model))


def load_pipeline(
    model: str,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    log: Callable[[str], object] = print,
    offload: bool = False,
):
    """A diffusers pipeline of a supported family from a hub id, a local folder or a named model (``"toy"``),
    frozen, on ``device``.

    The family (SD 1.x/2.x, SDXL, FLUX.1) is read from the checkpoint's ``model_index.json``. Nothing is
    downloaded unless ``model`` is a hub id; weights load from safetensors only, never remote code; the
    safety checker is off (as in the authors' code). SD and SDXL sample with DDIM (the paper's sampler),
    FLUX.1 with its own flow-matching scheduler. ``offload``: model CPU offload onto ``device`` (a GPU).
    """
    from .families import family_for_class

    device = resolve_device(str(device) if device is not None else None)
    if offload and device.type == "cpu":
        raise ConfigError("$offload moves each model to the GPU only while it runs: it needs $device cuda")
    dtype = dtype or resolve_dtype(None, device)
    source = model_source(model)
    if named_model(model) is not None and not (source / "model_index.json").exists():
        raise ModelLoadError(
            f"the bundled {model} model is missing at {source}; reinstall imposter-diffusion"
        )
    if source.exists():
        if not (source / "model_index.json").is_file():
            raise ModelLoadError(
                f"{source} is not a diffusers pipeline folder (no model_index.json); "
                "save one with pipe.save_pretrained(folder) or pass a hub id"
            )
        class_name = model_class_name(model, source)
        family = family_for_class(class_name, str(source))
        kwargs = dict(dtype=dtype, use_safetensors=True, **family.load_kwargs)
        try:
            pipe = family.pipeline_class_for(class_name).from_pretrained(
                source, local_files_only=True, **kwargs
            )
        except (OSError, ValueError) as err:
            raise ModelLoadError(f"could not load the pipeline in {source}: {first_line(err)}") from err
    elif _looks_like_path(model):
        raise ModelLoadError(
            f"model folder not found: {model} (check the path, or pass a hub id like org/name)"
        )
    else:
        try:
            class_name = model_class_name(model, None)
        except Exception as err:  # hub errors come in many types; all mean the same to the user
            raise ModelLoadError(
                f"could not load {model!r}: no local folder of that name, and the Hugging Face hub said: "
                f"{first_line(err)} (check the id and your connection, or pass a local folder)"
            ) from err
        family = family_for_class(class_name, repr(model))
        try:
            pipe = family.pipeline_class_for(class_name).from_pretrained(
                model, dtype=dtype, use_safetensors=True, **family.load_kwargs
            )
        except Exception as err:
            raise ModelLoadError(f"could not load {model!r} from the hub: {first_line(err)}") from err
    pipe = set_up_pipeline(pipe, ddim=True, log=log)
    if offload:
        pipe.enable_model_cpu_offload(device=device)
        return pipe
    return pipe.to(device)


def set_up_pipeline(pipe, ddim: bool = True, log: Callable[[str], object] = print):
    """Freeze ``pipe`` for our use (no gradients, eval mode, no progress bars); with ``ddim`` an SD or SDXL
    scheduler becomes DDIM with the model's own betas (the paper's sampler), said in one line if it was another."""
    from .families import family_of

    family = family_of(pipe)
    family.set_up(pipe, ddim=ddim, log=log)
    for part in family.modules(pipe):
        part.requires_grad_(False)
        part.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
