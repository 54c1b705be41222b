"""``hiper``: HiPer, highly personalized text embeddings (Han et al., arXiv 2303.08767), as a peer.

What HiPer does, read from the authors' code (github.com/HiPer0/HiPer, train.py and inference.py;
see docs/peers-implementation.md):

- The frozen text encoder's *output* for the source caption is computed once. Its last n positions
  (n = 5; the authors use 10 for faces) are the only trainable tensor, initialised from themselves.
- Training is the plain epsilon (or v) MSE on the source image alone, with random timesteps, Adam at
  lr 5e-3; the authors' scripts render with the 1000-step checkpoint. UNet, VAE and text encoder stay
  frozen: nothing but the tail is learned.
- Sampling conditions on the target caption's output with its last n positions replaced by
  0.8 x the learned tail; DDIM 50, CFG 7.5 with the "" embedding, from random noise.

HiPer never sees the driving image: the action comes from the target caption alone. K and frequency
guidance do not exist in HiPer, so they are fixed off.

SD 2.x: its tokenizer pads with "!" where SD 1.x (HiPer's model) pads with the end token, so there
the last n positions would be "!" outputs rather than end-token outputs. We give the tail positions
end-token ids when encoding the source caption, on every model: the tail then starts, as in HiPer,
from contextualised end-token outputs, and because CLIP's text attention is causal, the positions
before the tail are exactly the pipeline's own encoding. Captions must leave the tail free (at most
77 - n tokens with the start and end tokens), or the tail would overwrite their last words.

Departures, each because the framework prepares one fitted image: no random crop (the authors crop
512 at random from a short-side-512 resize), float32 Adam instead of 8-bit Adam (which keeps 32-bit
state for a tensor this small anyway), no preview renders during training.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..config import FinetuneConfig
from ..errors import PromptError
from ..families.sd import padded_ids
from ..finetune import Objective, TrainingLoss, train
from ..personalizations import EmbeddingPersonalization, Personalization
from .conditioning import count_tokens, encode_ids
from .imposter import loss_summary
from .inversion import InversionMethod, frozen, plain

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair

TAIL = "hiper_tail"  # the tensor's name in embeddings.safetensors: (n, D)
INFERENCE_SCALE = 0.8  # HiPer inference.py: the learned tail enters the target embedding times 0.8


def check_tail_room(tokenizer, prompt: str, tokens: int, flag: str) -> None:
    """PromptError unless ``prompt`` leaves the last ``tokens`` positions to the learned tail."""
    count, limit = count_tokens(tokenizer, prompt), tokenizer.model_max_length
    if count > limit - tokens:
        raise PromptError(
            f"{flag} has {count} tokens; HiPer keeps the last {tokens} of this model's {limit} positions "
            f"for its learned embedding, so shorten the caption to at most {limit - tokens} tokens"
        )


def tail_ids(tokenizer, prompt: str, tokens: int) -> torch.Tensor:
    """Token ids (1, L) of ``prompt`` padded as the pipeline pads, with the last ``tokens`` set to the end token."""
    ids = padded_ids(tokenizer, prompt)
    ids[:, -tokens:] = tokenizer.eos_token_id
    return ids


def hiper_condition(target: torch.Tensor, tail: torch.Tensor, scale: float = INFERENCE_SCALE) -> torch.Tensor:
    """The target embedding (1, L, D) with its last n positions replaced by ``scale`` x the tail (n, D)."""
    n = tail.shape[0]
    return torch.cat([target[:, :-n], scale * tail.to(target)[None]], dim=1)


@dataclass
class TailObjective(Objective):
    """HiPer's training: the source caption's embedding, ``head`` then the learned ``tail``, denoises the source."""

    model: Any
    loss: TrainingLoss
    latents: torch.Tensor  # the source's (1, C, h, w)
    head: torch.Tensor  # (1, L - n, D), fixed
    tail: torch.Tensor  # (n, D), learned

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        noise, timesteps = self.loss.draw(generator, self.latents)
        embeds = torch.cat([self.head, self.tail[None]], dim=1)
        yield self.loss(self.model, self.latents, embeds, noise, timesteps, self.dtype)


class HiPerMethod(InversionMethod):
    """Learn the last n output positions of the source caption's embedding; sample with the target caption."""

    name = "hiper"
    description = "HiPer: learned tail of the source caption's text embedding, frozen model, target text only"
    fixed_finetune = {"kind": "text-embedding"}
    finetune_defaults = {"steps": 1000, "learning_rate": 5e-3}  # HiPer script.sh lr; renders step 1000

    def __init__(self, tokens: int = 5, scale: float = INFERENCE_SCALE):
        if tokens < 1:
            raise ValueError(f"HiPer needs at least one learned token, got {tokens}")
        self.tokens = tokens  # HiPer: 5; the authors use 10 for faces
        self.scale = scale

    def personalize(
        self, engine: Engine, pair: PreparedPair, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        pipe, n = engine.pipe, self.tokens
        check_tail_room(pipe.tokenizer, pair.source_prompt, n, "$source_prompt")
        with torch.no_grad():
            source = encode_ids(pipe.text_encoder, tail_ids(pipe.tokenizer, pair.source_prompt, n))
        head = source[:, :-n]
        tail = source[0, -n:].clone().requires_grad_(True)
        optimizer = torch.optim.Adam([tail], lr=finetune.learning_rate)
        objective = TailObjective(engine.denoiser, engine.training_loss(), pair.source_latents, head, tail)
        with frozen(pipe.unet, pipe.vae, pipe.text_encoder):
            losses = train(objective, optimizer, finetune.steps, finetune.seed, "HiPer", progress)
        info = {**loss_summary(losses), "tokens": n, "scale": self.scale}
        return EmbeddingPersonalization(
            method=self.name, info=info, tensors={TAIL: tail.detach().cpu().clone()}
        )

    def conditioning(self, engine: Engine, pair: PreparedPair, personalization: EmbeddingPersonalization):
        tail = personalization.tensors[TAIL]
        check_tail_room(engine.pipe.tokenizer, pair.target_prompt, tail.shape[0], "$target_prompt")
        return plain(
            hiper_condition(engine.conditioning(pair, pair.target_prompt).embeds, tail, self.scale),
            engine.conditioning(pair, "").embeds,
        )
