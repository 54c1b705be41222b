"""What a method learns for one pair: the base class, a LoRA adapter, a whole fine-tuned UNet, or text tensors."""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from safetensors.torch import load_file, save_file

from .errors import ModelLoadError
from .lora import ADAPTER_NAME, own_adapter

if TYPE_CHECKING:
    from .prepared import Engine

METADATA_FILE = "personalization.json"
LORA_FILE = "pytorch_lora_weights.safetensors"  # the name diffusers' load_lora_weights looks for
UNET_FILE = "diffusion_pytorch_model.safetensors"
EMBEDDINGS_FILE = "embeddings.safetensors"


def recorded_method(record: dict[str, Any]) -> str | None:
    """The method of an adapter's record under today's names: a LoRA recorded as ``imposter`` was learned for
    ImPoster's sampling, called ``imposter-guided`` since ``imposter`` became retarget-then-render."""
    method = record.get("method")
    return "imposter-guided" if method == "imposter" and record.get("weights") == "lora" else method


def stored_method(directory: str | Path) -> str | None:
    """The method recorded in an adapter folder's ``personalization.json`` (None: no readable record)."""
    try:
        return recorded_method(json.loads((Path(directory) / METADATA_FILE).read_text()))
    except (OSError, ValueError, AttributeError):
        return None


@dataclass
class Personalization(ABC):
    """What a method learned for one pair; ``active`` puts it into the pipeline for sampling."""

    method: str
    info: dict[str, Any] = field(default_factory=dict)  # settings, losses, timings: written with it
    family: str = "sd"  # the model family it was learned on (imposter.families: "sd", "sdxl", "flux")
    base_model: str = ""  # the checkpoint it was learned on, as the user named it

    # the form of its saved weights (personalization.json's "weights"); what was learned is FinetuneConfig.kind
    weights: ClassVar[str] = ""

    @contextlib.contextmanager
    def active(self, engine: Engine) -> Iterator[None]:
        """Apply to ``engine``'s pipeline inside the block, and undo afterwards (default: nothing to apply)."""
        yield

    def check_fits(self, engine: Engine) -> None:
        """Raise (RuntimeError, ValueError, ...) if this does not fit ``engine``'s model: apply it once."""
        with self.active(engine):
            pass

    def save(self, directory: str | Path) -> Path:
        """Write the weights and ``personalization.json`` (method, family, base model, info) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_weights(directory)
        metadata = {
            "weights": self.weights,
            "method": self.method,
            "family": self.family,
            "base_model": self.base_model,
            "info": self.info,
        }
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str))
        return directory

    @abstractmethod
    def _save_weights(self, directory: Path) -> None: ...


@dataclass
class LoraPersonalization(Personalization):
    """LoRA weights of the denoiser in its family's diffusers format (``unet.``- or ``transformer.``-prefixed
    keys), loadable by ``pipe.load_lora_weights``."""

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    weights: ClassVar[str] = "lora"

    @contextlib.contextmanager
    def active(self, engine: Engine) -> Iterator[None]:
        # the denoiser-level half of pipe.load_lora_weights (which would also look for text-encoder keys)
        with own_adapter(engine.denoiser, ADAPTER_NAME):  # afterwards: the model as it was, user LoRAs kept
            engine.denoiser.load_lora_adapter(
                dict(self.state), prefix=engine.family.lora_prefix, adapter_name=ADAPTER_NAME
            )
            yield

    def _save_weights(self, directory: Path) -> None:
        from .families import get_family

        get_family(self.family).save_lora(directory, self.state)

    @classmethod
    def load(
        cls, directory: Path, method: str, info: dict | None = None, family: str | None = None
    ) -> LoraPersonalization:
        """Read a LoRA folder (ours, or any diffusers LoRA saved as ``pytorch_lora_weights.safetensors``)."""
        return cls(
            method=method, info=info or {}, state=load_file(directory / LORA_FILE), family=family or "sd"
        )


@dataclass
class UnetPersonalization(Personalization):
    """A whole fine-tuned UNet (the authors' full fine-tune): weights plus the UNet's config."""

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    unet_config: dict = field(default_factory=dict)
    weights: ClassVar[str] = "unet"

    @contextlib.contextmanager
    def active(self, engine: Engine) -> Iterator[None]:
        unet = engine.pipe.unet
        original = {k: v.detach().to("cpu", copy=True) for k, v in unet.state_dict().items()}
        unet.load_state_dict(self.state)
        try:
            yield
        finally:
            unet.load_state_dict(original)

    def _save_weights(self, directory: Path) -> None:
        save_file({k: v.contiguous() for k, v in self.state.items()}, str(directory / UNET_FILE))
        (directory / "config.json").write_text(json.dumps(self.unet_config, indent=2, default=str))

    @classmethod
    def load(cls, directory: Path, method: str, info: dict | None = None) -> UnetPersonalization:
        """Read a UNet folder written by ``save`` (or by ``UNet2DConditionModel.save_pretrained``)."""
        config = json.loads((directory / "config.json").read_text())
        return cls(method=method, info=info or {}, state=load_file(directory / UNET_FILE), unet_config=config)


@dataclass
class EmbeddingPersonalization(Personalization):
    """Learned text-side tensors (HiPer's embedding tail, ADI's identifier), with an optional LoRA (adi+lora).

    The method reads ``tensors`` when it samples; ``active`` loads the LoRA, if any, into the UNet.
    Saved as ``embeddings.safetensors`` (and ``pytorch_lora_weights.safetensors`` for the LoRA).
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    lora: dict[str, torch.Tensor] = field(default_factory=dict)  # diffusers format, ``unet.``-prefixed
    weights: ClassVar[str] = "embeddings"

    @contextlib.contextmanager
    def active(self, engine: Engine) -> Iterator[None]:
        if not self.lora:
            yield
            return
        with LoraPersonalization(method=self.method, state=self.lora).active(engine):
            yield

    def check_fits(self, engine: Engine) -> None:
        width = engine.pipe.text_encoder.config.hidden_size
        for name, tensor in self.tensors.items():
            if tensor.shape[-1] != width:
                raise ValueError(f"{name} has width {tensor.shape[-1]}, this text encoder {width}")
        super().check_fits(engine)

    def _save_weights(self, directory: Path) -> None:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.tensors.items()},
            str(directory / EMBEDDINGS_FILE),
        )
        if self.lora:
            LoraPersonalization(method=self.method, state=self.lora)._save_weights(directory)

    @classmethod
    def load(cls, directory: Path, method: str, info: dict | None = None) -> EmbeddingPersonalization:
        """Read a folder written by ``save``; ModelLoadError if it holds no embeddings."""
        if not (directory / EMBEDDINGS_FILE).exists():
            raise ModelLoadError(
                f"$adapter {directory} holds no {EMBEDDINGS_FILE}; give the adapter/ folder of a run "
                f"of $method {method}"
            )
        lora = load_file(directory / LORA_FILE) if (directory / LORA_FILE).exists() else {}
        return cls(method=method, info=info or {}, tensors=load_file(directory / EMBEDDINGS_FILE), lora=lora)
