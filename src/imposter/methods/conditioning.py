"""Text-side conditioning shared by the inversion peers (HiPer, ADI): nothing here trains a weight.

- ``encode_ids``, ``placeholder_prompt``, ``encode_placeholder``: text-encoder outputs of token ids,
  with the input embedding of one placeholder word replaced by learned vectors (textual inversion).
- ``layerwise_conditioning`` and ``stack_layers``: one text embedding per cross-attention layer of the UNet
  (P+, Voynov et al., arXiv 2303.09522). The per-layer embeddings travel through the UNet as one
  tensor, concatenated along the sequence axis; each cross-attention layer's processor keeps its own
  slice. So the pipelines' denoising loops and the training loss
  (``families.losses.denoising_loss``), which only pass ``encoder_hidden_states`` along, run unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..errors import PromptError, quoted


def encode_ids(text_encoder, ids: torch.Tensor) -> torch.Tensor:
    """Text-encoder output (N, L, D), float32, of token ids (N, L) (gradients flow if the inputs need them)."""
    return text_encoder(ids.to(text_encoder.device))[0].float()


def count_tokens(tokenizer, prompt: str) -> int:
    """Tokens of ``prompt`` with the start and end tokens, untruncated."""
    return len(tokenizer(prompt, truncation=False).input_ids)


@dataclass(frozen=True)
class PlaceholderPrompt:
    """Token ids (1, L) of a prompt holding one placeholder word, and the placeholder's position."""

    ids: torch.Tensor
    position: int


def placeholder_prompt(tokenizer, prompt: str, placeholder: str, flag: str) -> PlaceholderPrompt:
    """Tokenize ``prompt`` around ``placeholder`` (which must occur once), padded like the pipeline pads.

    The placeholder gets one position; its id is a stand-in whose embedding ``encode_placeholder``
    replaces. Padding uses the tokenizer's own pad token (the end token for SD 1.x, "!" for SD 2.x), as
    the pipeline's own prompts are padded.
    """
    parts = prompt.split(placeholder)
    if len(parts) != 2:
        raise PromptError(
            f"{flag} {quoted(prompt)} must contain the placeholder {placeholder!r} exactly once"
        )

    def words(text: str) -> list[int]:
        return tokenizer(text.strip(), add_special_tokens=False).input_ids if text.strip() else []

    before, after = (words(part) for part in parts)
    # any id but the end token does as the stand-in (CLIP pools at the first end token)
    ids = [tokenizer.bos_token_id, *before, tokenizer.bos_token_id, *after, tokenizer.eos_token_id]
    limit = tokenizer.model_max_length
    if len(ids) > limit:
        raise PromptError(
            f"{flag} {quoted(prompt)} has {len(ids)} tokens, more than this model's limit of {limit}; shorten it"
        )
    ids += [tokenizer.pad_token_id] * (limit - len(ids))
    return PlaceholderPrompt(ids=torch.tensor([ids]), position=1 + len(before))


def encode_placeholder(text_encoder, prompt: PlaceholderPrompt, vectors: torch.Tensor) -> torch.Tensor:
    """Text-encoder outputs (N, L, D), one per row of ``vectors`` (N, D_in): the placeholder's input embedding.

    A forward hook on the token-embedding table swaps the placeholder's row; the table itself is not
    touched, and the hook is removed before returning. Gradients flow back to ``vectors``.
    """
    position = prompt.position

    def replace(module, inputs, output):
        output = output.clone()
        output[:, position] = vectors.to(output.dtype)
        return output

    handle = text_encoder.get_input_embeddings().register_forward_hook(replace)
    try:
        return encode_ids(text_encoder, prompt.ids.expand(vectors.shape[0], -1))
    finally:
        handle.remove()


# -- one text embedding per cross-attention layer (P+) -------------------------------------------


def cross_attention_layers(unet) -> list[str]:
    """Keys of ``unet.attn_processors`` that belong to cross-attention layers, in the UNet's order."""
    return [
        name
        for name in unet.attn_processors
        if unet.get_submodule(name.removesuffix(".processor")).is_cross_attention
    ]


class LayerSliceProcessor:
    """Runs a layer's own attention processor on its slice of the stacked per-layer text embedding."""

    def __init__(self, inner, index: int, count: int):
        self.inner = inner
        self.index = index
        self.count = count

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        if encoder_hidden_states is not None:
            length = encoder_hidden_states.shape[1] // self.count
            start = self.index * length
            encoder_hidden_states = encoder_hidden_states[:, start : start + length]
        return self.inner(attn, hidden_states, encoder_hidden_states, *args, **kwargs)


@contextlib.contextmanager
def layerwise_conditioning(unet) -> Iterator[list[str]]:
    """Inside the block, cross-attention layer i reads slice i of a ``stack_layers`` embedding; yields the layer names.

    The original processors (the very objects) are put back afterwards.
    """
    original = unet.attn_processors
    layers = cross_attention_layers(unet)
    processors = dict(original)
    for index, name in enumerate(layers):
        processors[name] = LayerSliceProcessor(original[name], index, len(layers))
    unet.set_attn_processor(processors)
    try:
        yield layers
    finally:
        unet.set_attn_processor(dict(original))


def stack_layers(per_layer: torch.Tensor) -> torch.Tensor:
    """Per-layer embeddings (layers, L, D) -> one conditioning tensor (1, layers * L, D)."""
    return per_layer.reshape(1, -1, per_layer.shape[-1])


def shared_layers(embeds: torch.Tensor, layers: int) -> torch.Tensor:
    """One embedding (1, L, D) given to every layer (the unconditional prompt): (1, layers * L, D)."""
    return embeds.repeat(1, layers, 1)
