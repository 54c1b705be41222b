"""``adi`` and ``adi+lora``: ADI, action-disentangled identifiers (Huang et al., CVPR 2024, arXiv 2311.15841).

There is no public code; this is our reading of the paper. What we could verify (the abstract and
the first page of the paper, through stored copies; details in docs/peers-implementation.md):

- ADI is *inversion*: it learns an identifier ``<A>`` for the action shared by a few exemplar images
  and uses it in prompts for new subjects ("a dog <A>"); the diffusion model is not fine-tuned.
- The identifier is *layer-wise*: one token per cross-attention layer, spreading the inversion over
  the features each layer sees (the P+ space of Voynov et al.).
- Sample *triples* give a *gradient invariance*: compared with an anchor exemplar, a
  context-different sample shares the action and an action-different sample shares the context;
  the channels that behave like context have their updates masked.

What the paper's method sections say in detail (thresholds, rates, steps, how triples are built)
could not be read here, so the following are our choices, each kept simple and named:

- Identifier: one input-token embedding per cross-attention layer (16 in SD 1.x/2.x), each encoded
  by the frozen text encoder in the caption "<driving subject> <A>" and given to its own layer
  (``conditioning.layerwise_conditioning``). Initialised, for every layer, to the mean input
  embedding of the driving caption's action words ("drinking water from a mug").
- Prompts: ``<A>`` replaces the action words, in the driving caption for training ("a cat <A>") and
  in the target prompt for sampling ("a dog <A>"; the source caption + "<A>" if the target prompt does
  not hold the driving caption's action words).
- Triples, every step: the anchor is an exemplar (the driving image, plus any extra exemplars given
  to ``ADIMethod``). The context-different sample is another exemplar when there are several, and
  with one exemplar the anchor recoloured (RGB channels rotated, or grey): same pose, other
  appearance. The action-different sample is the anchor's latent cut into a 4 x 4 grid of tiles and
  shuffled: the same colours and textures, no pose. All three share one noise draw and timestep, so
  their gradients differ only by the image.
- Mask: per layer and channel, ``score = |g_anchor - g_action| - |g_anchor - g_context|``: how much
  more the channel's gradient changes with the action than with the context. In every layer the
  ``mask_ratio`` (0.5) fraction of channels with the lowest score is blocked: the mask has the
  identifier's shape (layers x embedding channels) and exactly that sparsity per layer.
- Update: Adam (lr 5e-3, 500 steps) on the masked mean gradient of the anchor and the
  context-different sample (both show the action); blocked channels keep their value that step.

``adi+lora``: ADI learns the action, never the source subject. This variant adds our LoRA
fine-tune (``finetune.finetune_lora``) on the source pair only (the driving pair would teach the
LoRA the driving subject's look, the very thing ADI keeps out of ``<A>``), and samples with both.
The identifier is learned as in ``adi`` (same steps and seed, ADI's learning rate); ``--lr`` and
``--rank`` set the LoRA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image, ImageOps

from ..config import FinetuneConfig
from ..errors import ConfigError, ModelLoadError, PromptError
from ..finetune import Objective, TrainingLoss, finetune_lora, train
from ..images import fit_image, load_image, to_rgb
from ..personalizations import EmbeddingPersonalization, Personalization
from ..prompts import split_subject
from .conditioning import (
    encode_placeholder,
    layerwise_conditioning,
    placeholder_prompt,
    shared_layers,
    stack_layers,
)
from .imposter import loss_summary
from .inversion import InversionMethod, frozen

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair

IDENTIFIER = "<A>"  # the action identifier's placeholder in prompts
IDENTIFIER_TENSOR = "adi_identifier"  # its name in embeddings.safetensors: (layers, D_in)
MASK_RATIO = 0.5  # fraction of each layer's channels blocked per step (ours; see the module docstring)
LEARNING_RATE = 5e-3  # ours: textual-inversion-style Adam on the identifier
STEPS = 500  # ours: ImPoster's fine-tuning budget, for a like-for-like comparison
TILE_GRID = 4  # the action-different sample: the anchor's latent cut into 4 x 4 shuffled tiles
FALLBACK_INITIALIZER = "doing"  # when the driving caption has no recognisable action words


# -- the gradient-invariance mask (a pure function) ----------------------------------------------


def check_mask_ratio(ratio: float) -> None:
    """ConfigError unless 0 <= ratio <= 1."""
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"ADI mask ratio must be in [0, 1], got {ratio}")


def invariance_mask(
    anchor: torch.Tensor, context: torch.Tensor, action: torch.Tensor, ratio: float = MASK_RATIO
) -> torch.Tensor:
    """0/1 mask shaped like the identifier gradients (layers, channels): 0 on each layer's context-like channels.

    ``anchor``, ``context``, ``action`` are the identifier's gradients from the anchor, the
    context-different (same action) and the action-different (same context) samples. A channel whose
    gradient moves more when the context changes than when the action changes carries context; in
    each layer the ``round(ratio * channels)`` lowest-scoring channels are blocked.
    """
    check_mask_ratio(ratio)
    score = (anchor - action).abs() - (anchor - context).abs()
    blocked = round(ratio * score.shape[-1])
    mask = torch.ones_like(score)
    if blocked:
        mask.scatter_(-1, score.argsort(dim=-1)[..., :blocked], 0.0)
    return mask


# -- sample triples --------------------------------------------------------------------------------


def recolor(image: Image.Image, variant: int) -> Image.Image:
    """The same picture in other colours: RGB channels rotated once (0) or twice (1), or grey (2)."""
    red, green, blue = image.split()
    variants = (
        lambda: Image.merge("RGB", (green, blue, red)),
        lambda: Image.merge("RGB", (blue, red, green)),
        lambda: ImageOps.grayscale(image).convert("RGB"),
    )
    return variants[variant]()


RECOLOR_VARIANTS = 3


def shuffle_tiles(latents: torch.Tensor, generator: torch.Generator, grid: int = TILE_GRID) -> torch.Tensor:
    """``latents`` (1, C, h, w) cut into ``grid`` x ``grid`` tiles in a random order (a border that does not divide stays)."""
    _, channels, height, width = latents.shape
    grid = max(1, min(grid, height, width))
    tile_h, tile_w = height // grid, width // grid
    core = latents[:, :, : grid * tile_h, : grid * tile_w]
    tiles = core.reshape(1, channels, grid, tile_h, grid, tile_w).permute(0, 2, 4, 1, 3, 5)
    tiles = tiles.reshape(grid * grid, channels, tile_h, tile_w)
    tiles = tiles[torch.randperm(grid * grid, generator=generator).to(tiles.device)]
    shuffled = tiles.reshape(1, grid, grid, channels, tile_h, tile_w).permute(0, 3, 1, 4, 2, 5)
    out = latents.clone()
    out[:, :, : grid * tile_h, : grid * tile_w] = shuffled.reshape(core.shape)
    return out


@dataclass
class Exemplars:
    """Latents of the exemplar images (M, C, h, w) and of their recoloured copies (M, variants, C, h, w)."""

    latents: torch.Tensor
    recolored: torch.Tensor

    @classmethod
    def encode(cls, engine: Engine, images: Sequence[Image.Image]) -> Exemplars:
        recolored = [recolor(image, v) for image in images for v in range(RECOLOR_VARIANTS)]
        latents = engine.encode_images(list(images))
        return cls(
            latents,
            engine.encode_images(recolored).reshape(len(images), RECOLOR_VARIANTS, *latents.shape[1:]),
        )

    def triple(self, generator: torch.Generator) -> torch.Tensor:
        """(anchor, context-different, action-different) latents, stacked (3, C, h, w)."""
        count = self.latents.shape[0]
        index = int(torch.randint(count, (1,), generator=generator))
        anchor = self.latents[index : index + 1]
        if count > 1:  # another exemplar: the same action in another context
            other = (index + 1 + int(torch.randint(count - 1, (1,), generator=generator))) % count
            context = self.latents[other : other + 1]
        else:  # the only exemplar in other colours
            variant = int(torch.randint(RECOLOR_VARIANTS, (1,), generator=generator))
            context = self.recolored[index, variant][None]
        return torch.cat([anchor, context, shuffle_tiles(anchor, generator)])


def per_sample_gradients(
    model,
    loss_fn: TrainingLoss,
    latents: torch.Tensor,
    cond: torch.Tensor,
    identifier: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The mean denoising loss of N samples under one conditioning, and each sample's gradient on ``identifier``.

    ``cond`` (1, L, D) is a function of ``identifier``; every sample gets the same ``noise`` (1, C, h, w)
    and ``timesteps`` (1,). The UNet runs once for the batch; each sample's gradient then goes back
    through the text encoder on its own (each is 1/N of that sample's own loss gradient).
    """
    count = latents.shape[0]
    per_sample = cond.detach().expand(count, -1, -1).clone().requires_grad_(True)
    loss = loss_fn(
        model, latents, per_sample, noise.expand(count, -1, -1, -1), timesteps.expand(count), dtype
    )
    (cond_grads,) = torch.autograd.grad(loss, per_sample)
    grads = [
        torch.autograd.grad(cond, identifier, cond_grads[k : k + 1], retain_graph=k < count - 1)[0]
        for k in range(count)
    ]
    return loss, grads


@dataclass
class IdentifierObjective(Objective):
    """ADI's training: triples of exemplars, the identifier's update masked to its action-like channels.

    ``backward`` sets the gradient to the masked mean of the anchor's and the context-different sample's;
    ``after_update`` puts the blocked channels back ("masks the updates").
    """

    model: Any
    loss: TrainingLoss
    exemplars: Exemplars
    text_encoder: Any
    prompt: Any  # the PlaceholderPrompt of the training caption
    identifier: torch.Tensor  # (layers, D_in), learned
    mask_ratio: float
    blocked: list[float] = field(default_factory=list)  # fraction of channels blocked, per step
    _grads: tuple[torch.Tensor, ...] = ()
    _mask: torch.Tensor | None = None
    _before: torch.Tensor | None = None

    def losses(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        latents = self.exemplars.triple(generator)
        noise, timesteps = self.loss.draw(generator, latents[:1])
        cond = stack_layers(encode_placeholder(self.text_encoder, self.prompt, self.identifier))
        loss, self._grads = per_sample_gradients(
            self.model, self.loss, latents, cond, self.identifier, noise, timesteps, self.dtype
        )
        yield loss

    def backward(self, loss: torch.Tensor) -> None:
        anchor, context, action = self._grads
        self._mask = invariance_mask(anchor, context, action, self.mask_ratio)
        self.identifier.grad = self._mask * (anchor + context) / 2
        self._before = self.identifier.detach().clone()

    def after_update(self) -> None:
        with torch.no_grad():  # "masks the updates": blocked channels keep their value
            self.identifier.copy_(torch.where(self._mask.bool(), self.identifier, self._before))
        self.blocked.append(1.0 - self._mask.mean().item())


# -- prompts -----------------------------------------------------------------------------------------


def driving_action(driving_prompt: str) -> str | None:
    """The action words of the driving caption ("drinking water from a mug"), or None if none are found."""
    try:
        return split_subject(driving_prompt)[1]
    except PromptError:
        return None


def training_prompt(driving_prompt: str) -> str:
    """The exemplars' caption with ``<A>`` for the action: "a cat drinking water" -> "a cat <A>"."""
    action = driving_action(driving_prompt)
    if action is None:
        return f"{driving_prompt.rstrip('.')} {IDENTIFIER}"
    return driving_prompt.replace(action, IDENTIFIER, 1)


def sampling_prompt(pair: PreparedPair) -> str:
    """The target prompt with ``<A>`` for the driving action's words ("a dog <A>"); else the source caption + ``<A>``."""
    action = driving_action(pair.driving_prompt)
    if action is not None and action in pair.target_prompt:
        return pair.target_prompt.replace(action, IDENTIFIER, 1)
    return f"{pair.source_prompt.rstrip('.')} {IDENTIFIER}"


def initial_identifier(engine: Engine, driving_prompt: str, layers: int) -> torch.Tensor:
    """Every layer's token starts at the mean input embedding of the action words, float32 (layers, D_in)."""
    tokenizer = engine.pipe.tokenizer
    words = driving_action(driving_prompt) or FALLBACK_INITIALIZER
    ids = torch.tensor(tokenizer(words, add_special_tokens=False).input_ids)
    table = engine.pipe.text_encoder.get_input_embeddings().weight
    return table[ids.to(table.device)].detach().float().mean(0).repeat(layers, 1)


# -- the methods -------------------------------------------------------------------------------------


class ADIMethod(InversionMethod):
    """Learn a layer-wise action identifier from the exemplars with gradient-invariance masking; the model stays frozen."""

    name = "adi"
    description = "ADI: layer-wise action identifier learned with gradient-invariance masking, frozen model"
    fixed_finetune = {"kind": "identifier"}
    finetune_defaults = {"steps": STEPS, "learning_rate": LEARNING_RATE}

    def __init__(
        self, exemplars: Sequence[str | Path | Image.Image] = (), mask_ratio: float = MASK_RATIO
    ) -> None:
        check_mask_ratio(mask_ratio)
        self.exemplars = list(exemplars)  # more images of the driving action, captioned like it
        self.mask_ratio = mask_ratio

    def exemplar_images(self, pair: PreparedPair) -> list[Image.Image]:
        """The driving image, then any extra exemplars fitted to the pair's size."""
        extra = [
            image if isinstance(image, Image.Image) else load_image(image, "exemplar")
            for image in self.exemplars
        ]
        return [pair.driving_image, *(fit_image(to_rgb(image, "exemplar"), *pair.size) for image in extra)]

    def learn_identifier(
        self,
        engine: Engine,
        pair: PreparedPair,
        steps: int,
        learning_rate: float,
        seed: int,
        progress: bool = True,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The identifier (layers, D_in) learned on the exemplars, and what to record about the run."""
        pipe = engine.pipe
        prompt_text = training_prompt(pair.driving_prompt)
        prompt = placeholder_prompt(pipe.tokenizer, prompt_text, IDENTIFIER, "$driving_prompt")
        exemplars = Exemplars.encode(engine, self.exemplar_images(pair))
        loss = engine.training_loss()
        with (
            frozen(pipe.unet, pipe.vae, pipe.text_encoder),
            layerwise_conditioning(engine.denoiser) as layers,
        ):
            identifier = initial_identifier(engine, pair.driving_prompt, len(layers)).requires_grad_(True)
            optimizer = torch.optim.Adam([identifier], lr=learning_rate)
            objective = IdentifierObjective(
                engine.denoiser, loss, exemplars, pipe.text_encoder, prompt, identifier, self.mask_ratio
            )
            losses = train(objective, optimizer, steps, seed, "ADI", progress)
        blocked = objective.blocked
        info = {
            **loss_summary(losses),
            "mask_ratio": self.mask_ratio,
            "blocked_fraction": sum(blocked) / len(blocked) if blocked else None,
            "exemplars": exemplars.latents.shape[0],
            "training_prompt": prompt_text,
            "cross_attention_layers": layers,
        }
        return identifier.detach().cpu().clone(), info

    def personalize(
        self, engine: Engine, pair: PreparedPair, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        identifier, info = self.learn_identifier(
            engine, pair, finetune.steps, finetune.learning_rate, finetune.seed, progress
        )
        return EmbeddingPersonalization(method=self.name, info=info, tensors={IDENTIFIER_TENSOR: identifier})

    @contextlib.contextmanager
    def conditioning(self, engine: Engine, pair: PreparedPair, personalization: EmbeddingPersonalization):
        identifier = personalization.tensors[IDENTIFIER_TENSOR].to(engine.device)
        prompt = placeholder_prompt(
            engine.pipe.tokenizer, sampling_prompt(pair), IDENTIFIER, "$target_prompt"
        )
        with torch.no_grad():
            cond = stack_layers(encode_placeholder(engine.pipe.text_encoder, prompt, identifier))
        with layerwise_conditioning(engine.denoiser) as layers:
            if len(layers) != identifier.shape[0]:
                raise ModelLoadError(
                    f"this ADI identifier has {identifier.shape[0]} layer tokens but the model has "
                    f"{len(layers)} cross-attention layers; use the model it was learned with"
                )
            yield cond, shared_layers(engine.conditioning(pair, "").embeds, len(layers))


class ADILoraMethod(ADIMethod):
    """ADI's action identifier plus our LoRA fine-tune on the source pair, sampled together."""

    name = "adi+lora"
    description = "ADI identifier for the action + LoRA fine-tune on the source for the subject"
    fixed_finetune = {"kind": "identifier+lora"}
    finetune_defaults: dict[str, Any] = {}  # --train-steps, --lr, --rank: the LoRA's (ImPoster's defaults)

    def personalize(
        self, engine: Engine, pair: PreparedPair, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        identifier, info = self.learn_identifier(
            engine, pair, finetune.steps, LEARNING_RATE, finetune.seed, progress
        )
        lora, lora_losses = finetune_lora(
            engine.denoiser,
            engine.scheduler,
            pair.source_latents,
            engine.conditioning(pair, pair.source_prompt).embeds,
            finetune,
            progress,
            loss=engine.training_loss(),
        )
        info = {**info, "identifier_learning_rate": LEARNING_RATE, "lora": loss_summary(lora_losses)}
        return EmbeddingPersonalization(
            method=self.name, info=info, tensors={IDENTIFIER_TENSOR: identifier}, lora=lora
        )
