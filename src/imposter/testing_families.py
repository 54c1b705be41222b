"""Tiny random SDXL and FLUX.1 pipelines built in code, offline, for tests and benchmarks.

The shapes follow diffusers' own fast tests (``get_dummy_components`` in
tests/pipelines/stable_diffusion_xl/test_stable_diffusion_xl.py and tests/pipelines/flux/test_pipeline_flux.py),
whose tokenizers come from the hub (``hf-internal-testing/tiny-random-clip``, ``tiny-random-t5``); here they
are built locally: a real CLIP BPE tokenizer over a small vocabulary, and a word-level T5 tokenizer made
with ``tokenizers``. The same builders take the real checkpoints' sizes (:data:`SDXL_BASE`, :data:`FLUX_DEV`)
for the speed and memory benchmarks: compute and memory do not depend on the weights. (The SD builders live in ``imposter.testing``; these can join its ``PIPELINES`` table.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

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


def clip_tokenizer(directory: Path, words: tuple[str, ...] = WORDS, max_length: int = 77):
    """A ``CLIPTokenizer`` (byte-pair encoding, CLIP's start/end tokens) whose files are written to ``directory``."""
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
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=max_length
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
    projection: int = 32  # CLIPTextModelWithProjection's output width (SDXL's text_encoder_2)


@dataclass(frozen=True)
class VaeShape:
    """An AutoencoderKL's sizes (defaults: two levels, 16-pixel images -> 8x8 latents)."""

    channels: tuple[int, ...] = (16, 32)
    layers_per_block: int = 1
    norm_groups: int = 8
    latent_channels: int = 4
    image_size: int = 16  # its config's sample_size: the training resolution (tiling starts above it)


@dataclass(frozen=True)
class SdxlShape:
    """Sizes of an SDXL pipeline (defaults: the tiny test pipeline, after diffusers' fast SDXL test)."""

    latent_size: int = 8  # 16-pixel images with the tiny VAE: 8x8 latents
    unet_channels: tuple[int, ...] = (8, 16)
    layers_per_block: int = 1
    down_blocks: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D")
    up_blocks: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D")
    attention_head_dim: tuple[int, ...] = (2, 4)
    transformer_layers: tuple[int, ...] = (1, 2)
    time_embed_dim: int = 8  # addition_time_embed_dim: each of the 6 time ids is embedded this wide
    norm_groups: int = 8
    vae: VaeShape = VaeShape()
    text: ClipShape = ClipShape()  # CLIP ViT-L in SDXL
    text_2: ClipShape = ClipShape()  # OpenCLIP ViT-bigG in SDXL, with its projection


@dataclass(frozen=True)
class FluxShape:
    """Sizes of a FLUX.1 pipeline (defaults: the tiny test pipeline, after diffusers' fast FLUX test)."""

    layers: int = 1  # double-stream (MMDiT) blocks
    single_layers: int = 1
    head_dim: int = 16
    heads: int = 2
    rope_axes: tuple[int, ...] = (4, 4, 8)  # sums to head_dim
    vae: VaeShape = VaeShape()
    clip: ClipShape = ClipShape()  # pooled_projection_dim is its width
    t5_width: int = 32  # joint_attention_dim
    t5_kv: int = 8
    t5_ff: int = 37
    t5_layers: int = 2
    t5_heads: int = 4
    t5_feed_forward: str = "relu"


TINY_SDXL = SdxlShape()
TINY_FLUX = FluxShape()
_BIG_VAE = VaeShape(channels=(128, 256, 512, 512), layers_per_block=2, norm_groups=32, image_size=1024)
_CLIP_L = ClipShape(
    hidden=768, intermediate=3072, layers=12, heads=12, activation="quick_gelu", projection=768
)
# stabilityai/stable-diffusion-xl-base-1.0: unet/config.json (block_out_channels 320/640/1280, attention_head_dim
# 5/10/20, transformer_layers_per_block 1/2/10, addition_time_embed_dim 256, cross_attention_dim 2048,
# projection_class_embeddings_input_dim 2816, sample_size 128), vae/config.json (128/256/512/512, 2 layers),
# text_encoder (CLIP ViT-L/14: 768 wide, 12 layers) and text_encoder_2 (OpenCLIP bigG: 1280 wide, 32 layers,
# 20 heads, projection 1280) config.json files
SDXL_BASE = SdxlShape(
    latent_size=128,
    unet_channels=(320, 640, 1280),
    layers_per_block=2,
    down_blocks=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_blocks=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20),
    transformer_layers=(1, 2, 10),
    time_embed_dim=256,
    norm_groups=32,
    vae=_BIG_VAE,
    text=_CLIP_L,
    text_2=ClipShape(hidden=1280, intermediate=5120, layers=32, heads=20, activation="gelu", projection=1280),
)
# black-forest-labs/FLUX.1-dev: transformer/config.json (num_layers 19, num_single_layers 38, attention_head_dim
# 128, num_attention_heads 24, joint_attention_dim 4096, pooled_projection_dim 768, axes_dims_rope 16/56/56,
# in_channels 64), vae/config.json (latent_channels 16, 128/256/512/512), text_encoder (CLIP ViT-L/14) and
# text_encoder_2 (T5 v1.1 XXL: d_model 4096, d_kv 64, d_ff 10240, 24 layers, 64 heads, gated-gelu) config.json
FLUX_DEV = FluxShape(
    layers=19,
    single_layers=38,
    head_dim=128,
    heads=24,
    rope_axes=(16, 56, 56),
    vae=VaeShape(
        channels=(128, 256, 512, 512), layers_per_block=2, norm_groups=32, latent_channels=16, image_size=1024
    ),
    clip=_CLIP_L,
    t5_width=4096,
    t5_kv=64,
    t5_ff=10240,
    t5_layers=24,
    t5_heads=64,
    t5_feed_forward="gated-gelu",
)
SHAPES = {"sdxl": {"tiny": TINY_SDXL, "real": SDXL_BASE}, "flux": {"tiny": TINY_FLUX, "real": FLUX_DEV}}


def _clip_config(tokenizer, shape: ClipShape):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        max_position_embeddings=77,
        hidden_act=shape.activation,
        projection_dim=shape.projection,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


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


def sdxl_components(
    directory: Path, seed: int = 0, shape: SdxlShape = TINY_SDXL, device: str | torch.device = "cpu"
) -> dict:
    """UNet (text_time additions), VAE, two CLIP text encoders and tokenizers, Euler scheduler: an SDXL.

    ``device``: where the models are built ("meta": shapes only, to count parameters).
    """
    from diffusers import EulerDiscreteScheduler

    with torch.device(device):
        models = _sdxl_models(directory, seed, shape)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    return {**models, "scheduler": scheduler}


def _sdxl_models(directory: Path, seed: int, shape: SdxlShape) -> dict:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=shape.unet_channels,
        layers_per_block=shape.layers_per_block,
        sample_size=shape.latent_size,
        in_channels=4,
        out_channels=4,
        down_block_types=shape.down_blocks,
        up_block_types=shape.up_blocks,
        attention_head_dim=shape.attention_head_dim,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=shape.time_embed_dim,
        transformer_layers_per_block=shape.transformer_layers,
        # the 6 time ids embedded, then text_encoder_2's projection
        projection_class_embeddings_input_dim=6 * shape.time_embed_dim + shape.text_2.projection,
        cross_attention_dim=shape.text.hidden + shape.text_2.hidden,  # both encoders' states side by side
        norm_num_groups=shape.norm_groups,
    )
    torch.manual_seed(seed)
    vae = random_vae(shape.vae)
    tokenizer = clip_tokenizer(directory / "tokenizer-src")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer, shape.text))
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(tokenizer, shape.text_2))
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
    )


def flux_components(
    directory: Path,
    seed: int = 0,
    guidance_embeds: bool = True,
    shape: FluxShape = TINY_FLUX,
    device: str | torch.device = "cpu",
) -> dict:
    """Transformer, VAE, CLIP + T5 text encoders and tokenizers, flow-matching scheduler: a FLUX.1.

    ``guidance_embeds``: True is FLUX.1-dev's distilled guidance embedding; False is FLUX.1-schnell.
    ``device``: where the models are built ("meta": shapes only, to count parameters).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    with torch.device(device):
        models = _flux_models(directory, seed, guidance_embeds, shape)
    # FLUX.1-dev's scheduler config: resolution-dependent shift (mu) at sampling, unshifted sigmas in training
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return {**models, "scheduler": scheduler}


def flux_transformer(
    shape: FluxShape, latent_channels: int, pooled_width: int, guidance_embeds: bool = False
):
    """A random ``FluxTransformer2DModel`` of ``shape`` over 2x2 patches of ``latent_channels`` latents."""
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4 * latent_channels,  # one 2x2 patch of latents per token
        num_layers=shape.layers,
        num_single_layers=shape.single_layers,
        attention_head_dim=shape.head_dim,
        num_attention_heads=shape.heads,
        joint_attention_dim=shape.t5_width,
        pooled_projection_dim=pooled_width,
        axes_dims_rope=shape.rope_axes,
        guidance_embeds=guidance_embeds,
    )


def t5_encoder(shape: FluxShape, tokenizer, **options):
    """A random ``T5EncoderModel`` of ``shape``'s T5 sizes over ``tokenizer``; ``options`` go to ``T5Config``."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=shape.t5_width,
            d_kv=shape.t5_kv,
            d_ff=shape.t5_ff,
            num_layers=shape.t5_layers,
            num_heads=shape.t5_heads,
            feed_forward_proj=shape.t5_feed_forward,
            **options,
        )
    )


def _flux_models(directory: Path, seed: int, guidance_embeds: bool, shape: FluxShape) -> dict:
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    transformer = flux_transformer(shape, shape.vae.latent_channels, shape.clip.hidden, guidance_embeds)
    torch.manual_seed(seed)
    # diffusers' dummy FLUX VAE: no quant convs, a shift and a scale (FLUX.1's own are 0.1159, 0.3611)
    vae = random_vae(
        shape.vae, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035
    )
    tokenizer = clip_tokenizer(directory / "tokenizer-src")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer, shape.clip))
    tokenizer_2 = t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder_2 = t5_encoder(shape, tokenizer_2)
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
    )


def kontext_components(directory: Path, seed: int = 0, **options) -> dict:
    """The tiny FLUX.1 components as a ``FluxKontextPipeline`` takes them (no IP-Adapter image encoder).

    diffusers' tests/pipelines/flux/test_pipeline_flux_kontext.py builds the same transformer, VAE and
    encoders as its FLUX test; FLUX.1-Kontext-dev keeps the guidance embedding (its transformer config:
    ``guidance_embeds: true``), so ours does too.
    """
    return {**flux_components(directory, seed, **options), "image_encoder": None, "feature_extractor": None}


def tiny_pipeline(family: str, directory: Path, **options):
    """A tiny random ``StableDiffusionXLPipeline`` ("sdxl"), ``FluxPipeline`` ("flux") or ``FluxKontextPipeline``
    ("kontext")."""
    from diffusers import FluxKontextPipeline, FluxPipeline, StableDiffusionXLPipeline

    if family == "sdxl":
        return StableDiffusionXLPipeline(**sdxl_components(directory, **options))
    if family == "flux":
        return FluxPipeline(**flux_components(directory, **options))
    if family == "kontext":
        return FluxKontextPipeline(**kontext_components(directory, **options))
    raise ValueError(f"no tiny builder for family {family!r} here (SD: imposter.testing)")


def save_tiny_pipeline(family: str, directory: Path, **options) -> Path:
    """Save :func:`tiny_pipeline` with ``save_pretrained`` (safetensors) and return its folder."""
    folder = directory / f"tiny-{family}"
    tiny_pipeline(family, directory, **options).save_pretrained(folder, safe_serialization=True)
    return folder
