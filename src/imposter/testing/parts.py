"""The pieces every family's random pipeline shares: local tokenizers, CLIP and T5 text encoders, a VAE.

diffusers' fast tests take their tokenizers from the hub (``hf-internal-testing/tiny-random-clip``,
``tiny-random-t5``); here they are built locally: a real CLIP BPE tokenizer over a small vocabulary, and a
word-level T5 tokenizer made with ``tokenizers``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CHARS = "abcdefghijklmnopqrstuvwxyz!"
# whole words of the test captions get one token each, through real BPE merges; others are spelled out
WORDS = ("a", "dog", "cat", "drinking", "water", "from", "mug", "dancing", "playing", "violin", "woman")


def bpe_merges(word: str) -> list[tuple[str, str]]:
    """The merges that join ``word`` left to right into one end-of-word token ("d o" -> "do", "do g</w>" ...)."""
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    merges = []
    while len(symbols) > 1:
        merges.append((symbols[0], symbols[1]))
        symbols = [symbols[0] + symbols[1], *symbols[2:]]
    return merges


def clip_tokenizer(
    directory: Path, words: tuple[str, ...] = WORDS, pad_token: str | None = None, max_length: int = 77
):
    """A ``CLIPTokenizer`` (byte-pair encoding, CLIP's start/end tokens) whose files are written to ``directory``.

    ``words=()`` spells every word out in single characters. SD 2.x pads with "!" instead of the end
    token: pass ``pad_token="!"`` to build that variant.
    """
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for c in CHARS:
            vocab.setdefault(c + suffix, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in words:
        for left, right in bpe_merges(word):
            if (left, right) not in merges:
                merges.append((left, right))
            vocab.setdefault(left + right, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    lines = ["#version: 0.2", *(f"{left} {right}" for left, right in merges)]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n")
    extra = {"pad_token": pad_token} if pad_token else {}
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=max_length, **extra
    )


def t5_tokenizer(words: tuple[str, ...] = WORDS, max_length: int = 512):
    """A word-level tokenizer with T5's special tokens (pad 0, end 1, unknown 2), as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


@dataclass(frozen=True)
class ClipShape:
    """A CLIP text encoder's sizes (defaults: diffusers' dummy encoder, 2 layers here)."""

    hidden: int = 32
    intermediate: int = 37
    layers: int = 2
    heads: int = 4
    activation: str = "gelu"
    projection: int | None = 32  # CLIPTextModelWithProjection's output width (SDXL's text_encoder_2)


@dataclass(frozen=True)
class VaeShape:
    """An AutoencoderKL's sizes (defaults: two levels, 16-pixel images -> 8x8 latents)."""

    channels: tuple[int, ...] = (16, 32)
    layers_per_block: int = 1
    norm_groups: int = 8
    latent_channels: int = 4
    image_size: int = 16  # its config's sample_size: the training resolution (tiling starts above it)


# the SDXL / FLUX.1 VAE: 4 levels, 1024-pixel training images
BIG_VAE = VaeShape(channels=(128, 256, 512, 512), layers_per_block=2, norm_groups=32, image_size=1024)
# CLIP ViT-L/14 (openai/clip-vit-large-patch14's text config: 768 wide, 12 layers, 12 heads, quick_gelu)
CLIP_L = ClipShape(
    hidden=768, intermediate=3072, layers=12, heads=12, activation="quick_gelu", projection=768
)


def clip_text_encoder(tokenizer, shape: ClipShape, with_projection: bool = False):
    """A random ``CLIPTextModel`` (``CLIPTextModelWithProjection``) of ``shape`` over ``tokenizer``."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    projection = {} if shape.projection is None else {"projection_dim": shape.projection}
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        max_position_embeddings=77,
        hidden_act=shape.activation,
        **projection,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def random_vae(shape: VaeShape = VaeShape(), **options):
    """An AutoencoderKL of ``shape`` with random weights; ``options`` add to its config."""
    from diffusers import AutoencoderKL

    levels = len(shape.channels)
    return AutoencoderKL(
        block_out_channels=shape.channels,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=shape.latent_channels,
        layers_per_block=shape.layers_per_block,
        norm_num_groups=shape.norm_groups,
        sample_size=shape.image_size,
        **options,
    )
