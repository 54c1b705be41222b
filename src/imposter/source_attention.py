"""Appearance from the source by attention (issue 19, direction 2): the denoiser's self-attention also reads the
source image's own tokens.

From a chosen step on, every denoiser call is preceded by a *reference pass*: the source latents, noised to
the same timestep (one fixed noise draw, ``scheduler.add_noise``), through the same denoiser with the same
inputs, recording what each decoder self-attention layer sees. In the real pass those layers attend to their
own tokens and the source's together (keys and values from both; queries their own), so colours, marks and
parts can be copied from the source wherever the layout, set in the steps before, asks for them.

This is diffusers' community "reference-only" pipeline (``examples/community/stable_diffusion_reference.py``:
``attn1`` over ``torch.cat([norm_hidden_states] + bank)``) restricted to the decoder as MasaCtrl does
(Cao et al., ICCV'23, Sec. 3.3: mutual self-attention in the decoder only, after the layout forms), without a
source inversion: the source is noised, not inverted. It needs a UNet's self-attention layers (``attn1``):
SD 1.x/2.x and SDXL; FLUX.1's joint attention is not covered yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ConfigError

SEED = 0  # the source's noise draw: fixed, so a run is reproducible from its seeds alone


@dataclass
class _Bank:
    """What the reference pass recorded, per self-attention layer, and what the layers do now."""

    mode: str = "off"  # "off": plain attention; "write": record; "read": attend to the record too
    states: dict[str, torch.Tensor] = field(default_factory=dict)
    busy: bool = False  # inside the reference pass


class _SharedSelfAttention:
    """A self-attention processor that records its input (write) or attends to it as well (read)."""

    def __init__(self, name: str, inner: Any, bank: _Bank):
        self.name, self.inner, self.bank = name, inner, bank

    def __call__(
        self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs
    ):
        if encoder_hidden_states is None and self.bank.mode == "write":
            self.bank.states[self.name] = hidden_states
        elif encoder_hidden_states is None and self.bank.mode == "read":
            encoder_hidden_states = torch.cat([hidden_states, self.bank.states[self.name]], dim=1)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)


def decoder_self_attention(processors: dict[str, Any]) -> list[str]:
    """The names of the decoder's self-attention processors (``up_blocks.*.attn1``), MasaCtrl's layers."""
    return [name for name in processors if name.startswith("up_blocks.") and ".attn1." in name]


@contextmanager
def source_attention(
    denoiser: Any, scheduler: Any, source_latents: torch.Tensor, start_step: int | None
) -> Iterator[None]:
    """Within the block, the denoiser's decoder self-attention also attends to the noised source from denoising
    step ``start_step`` on (steps counted by distinct timesteps; None: nothing changes)."""
    if start_step is None:
        yield
        return
    processors = getattr(denoiser, "attn_processors", None)
    layers = decoder_self_attention(processors) if processors else []
    if not layers:
        raise ConfigError(
            "$source_attention_from needs a UNet's decoder self-attention (SD 1.x/2.x, SDXL); this model has "
            "none: leave $source_attention_from unset"
        )
    bank = _Bank()
    noise = torch.randn(
        source_latents.shape, generator=torch.Generator().manual_seed(SEED), dtype=torch.float32
    ).to(source_latents.device)
    seen: list[float] = []

    def reference_pass(module, args, kwargs):
        if bank.busy:
            return None
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        t = float(torch.as_tensor(timestep).flatten()[0])
        if not seen or seen[-1] != t:
            seen.append(t)
        bank.mode = "off"
        if len(seen) - 1 < start_step:
            return None
        t_index = torch.as_tensor(timestep, device=source_latents.device).flatten()[:1]
        noised = scheduler.add_noise(source_latents.float(), noise, t_index)
        noised = scheduler.scale_model_input(noised, timestep).to(sample.dtype)
        bank.busy, bank.mode = True, "write"
        try:
            module(noised.expand_as(sample), *args[1:], **{k: v for k, v in kwargs.items() if k != "sample"})
        finally:
            bank.busy = False
        bank.mode = "read"
        return None

    original = dict(processors)
    shared = {name: _SharedSelfAttention(name, original[name], bank) for name in layers}
    denoiser.set_attn_processor({**original, **shared})
    handle = denoiser.register_forward_pre_hook(reference_pass, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
        denoiser.set_attn_processor(original)
        bank.states.clear()
