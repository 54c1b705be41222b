"""Tiny random SDXL and FLUX.1 pipelines built in code, offline, for tests and benchmarks.

The shapes follow diffusers' own fast tests (``get_dummy_components`` in
tests/pipelines/stable_diffusion_xl/test_stable_diffusion_xl.py and tests/pipelines/flux/test_pipeline_flux.py),
whose tokenizers come from the hub (``hf-internal-testing/tiny-random-clip``, ``tiny-random-t5``); here they
are built locally: a real CLIP BPE tokenizer over a small vocabulary, and a word-level T5 tokenizer made
with ``tokenizers``. (The SD builders live in ``imposter.testing``; these can join its ``PIPELINES`` table.)
"""

from __future__ import annotations

import json
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


def _clip_config(tokenizer, projection_dim: int = 32):
    from transformers import CLIPTextConfig

    # diffusers' dummy text encoder (hidden 32, 5 layers, 4 heads), 2 layers here, our tokenizer's ids
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def tiny_vae(**options):
    """A two-level AutoencoderKL (16-pixel images -> 4x8x8 latents); ``options`` add to its config."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(16, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
        **options,
    )


def sdxl_components(directory: Path, seed: int = 0) -> dict:
    """UNet (text_time additions), VAE, two CLIP text encoders and tokenizers, Euler scheduler: a tiny SDXL."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,  # 16-pixel images with the VAE below: 8x8 latents
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 time ids x 8 + text_encoder_2's projection (32)
        cross_attention_dim=64,  # both text encoders' hidden states side by side (32 + 32)
        norm_num_groups=8,
    )
    torch.manual_seed(seed)
    vae = tiny_vae()
    tokenizer = clip_tokenizer(directory / "tokenizer-src")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(tokenizer))
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=scheduler,
    )


def flux_components(directory: Path, seed: int = 0, guidance_embeds: bool = True) -> dict:
    """Transformer, VAE, CLIP + T5 text encoders and tokenizers, flow-matching scheduler: a tiny FLUX.1.

    ``guidance_embeds``: True is FLUX.1-dev's distilled guidance embedding; False is FLUX.1-schnell.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels x one 2x2 patch
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # the T5 encoder's width
        pooled_projection_dim=32,  # the CLIP encoder's width
        axes_dims_rope=(4, 4, 8),
        guidance_embeds=guidance_embeds,
    )
    torch.manual_seed(seed)
    # diffusers' dummy FLUX VAE: no quant convs, a shift and a scale (FLUX.1's own are 0.1159, 0.3611)
    vae = tiny_vae(
        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035
    )
    tokenizer = clip_tokenizer(directory / "tokenizer-src")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    tokenizer_2 = t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
    )
    # FLUX.1-dev's scheduler config: resolution-dependent shift (mu) at sampling, unshifted sigmas in training
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=scheduler,
    )


def tiny_pipeline(family: str, directory: Path, **options):
    """A tiny random ``StableDiffusionXLPipeline`` ("sdxl") or ``FluxPipeline`` ("flux")."""
    from diffusers import FluxPipeline, StableDiffusionXLPipeline

    if family == "sdxl":
        return StableDiffusionXLPipeline(**sdxl_components(directory, **options))
    if family == "flux":
        return FluxPipeline(**flux_components(directory, **options))
    raise ValueError(f"no tiny builder for family {family!r} here (SD: imposter.testing)")


def save_tiny_pipeline(family: str, directory: Path, **options) -> Path:
    """Save :func:`tiny_pipeline` with ``save_pretrained`` (safetensors) and return its folder."""
    folder = directory / f"tiny-{family}"
    tiny_pipeline(family, directory, **options).save_pretrained(folder, safe_serialization=True)
    return folder
