"""LoRA plumbing on a diffusers model: add a fresh adapter, read its weights, and take ours out again.

Ours is one adapter called ``ADAPTER_NAME``. A user's own LoRAs (``pipe.load_lora_weights``) stay: while
ours is in, it is the active one; afterwards the user's adapters are back, with the same ones active.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .config import FinetuneConfig

ADAPTER_NAME = "imposter"


@contextlib.contextmanager
def own_adapter(model, name: str = ADAPTER_NAME) -> Iterator[None]:
    """Inside the block ``model`` may get our adapter ``name``; afterwards it is removed, the user's adapters kept.

    With no adapter of the user's, ``unload_lora`` returns the plain model (peft's wrappers removed too, which
    ``delete_adapters`` would leave in place); with some, only ours is deleted and theirs are re-activated.
    """
    theirs = [adapter for adapter in (getattr(model, "peft_config", None) or {}) if adapter != name]
    active = list(model.active_adapters()) if theirs else []
    try:
        yield
    finally:
        if name in (getattr(model, "peft_config", None) or {}):
            if theirs:
                model.delete_adapters(name)
                model.set_adapter(active)
            else:
                model.unload_lora()


def add_lora(model, config: FinetuneConfig, name: str = ADAPTER_NAME) -> list[torch.nn.Parameter]:
    """Add a fresh LoRA adapter (seeded init, float32 weights) and return its trainable parameters."""
    import torch
    from peft import LoraConfig

    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.rank,  # scale 1, as diffusers' DreamBooth-LoRA script
        init_lora_weights="gaussian",
        target_modules=list(config.target_modules),
    )
    with torch.random.fork_rng(devices=[]):  # LoRA init draws from the global generator: seed it, restore it
        torch.manual_seed(config.seed)
        model.add_adapter(lora, adapter_name=name)
    params = [p for n, p in model.named_parameters() if f".{name}." in n and "lora_" in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def lora_state_dict(model, name: str = ADAPTER_NAME, prefix: str = "unet") -> dict[str, torch.Tensor]:
    """The adapter's weights in diffusers' format (``unet.``-prefixed keys), on the CPU, float32."""
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    peft_state = get_peft_model_state_dict(model, adapter_name=name)
    state = convert_state_dict_to_diffusers(peft_state)
    # diffusers renames only the attention projections (to_q.lora_A -> to_q.lora.down), and its loader reads
    # the key format of one key for the whole dict: a LoRA that also reaches other layers (the wide layers'
    # convolutions, feed-forwards) stays in PEFT's format throughout, or its attention half would be dropped
    if any(".lora_A." in key or ".lora_B." in key for key in state):
        state = peft_state
    return {f"{prefix}.{k}": v.detach().to("cpu", torch.float32).clone() for k, v in state.items()}
