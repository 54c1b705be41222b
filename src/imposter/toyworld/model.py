"""The toy world's Stable Diffusion pipeline: the same classes as SD, sized for a laptop CPU.

A word-level tokenizer over the world's vocabulary, a 3-layer CLIP text encoder, an AutoencoderKL
mapping 64x64 RGB to 16x16x4 latents, a UNet2DConditionModel with cross-attention at 8x8 and 4x4,
and SD's DDIM scheduler (scaled-linear betas 0.00085-0.012, epsilon prediction, as SD 2.1-base).
Nothing in imposter special-cases it: it loads with ``StableDiffusionPipeline.from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .world import VOCABULARY

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
ARTICLE = (r"\ban\b", "a")  # the tokenizers' normalizer reads "an" as "a" (world.VOCABULARY says why)


def article_normalizer():
    """Lower case, then "an" as "a": the toy tokenizers' normalizer (a ``tokenizers`` normalizer)."""
    from tokenizers import Regex, normalizers

    return normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex(ARTICLE[0]), ARTICLE[1])])


@dataclass(frozen=True)
class ToyModelConfig:
    """Sizes of the toy pipeline; chosen so training fits 90 minutes on 2 CPU cores and weights fit 40 MB."""

    max_length: int = 16  # tokens per caption, <bos> and <eos> included (captions have at most 7 words)
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    vae_channels: tuple[int, ...] = (16, 32, 64)  # 64x64 -> 16x16: a factor of 4
    vae_layers_per_block: int = 2  # v1 had 1 and blurred heads and patterns (26.9 dB on ground truths)
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (32, 64, 128)  # 16x16, 8x8, 4x4
    unet_head_dim: int = 16
    # GroupNorm needs several channels per group: with one it is instance norm, which rescales every
    # channel to unit variance per image, so a channel cannot be "off" and the VAE loses colour.
    # SD has 4 to 10 channels per group; so do we.
    vae_norm_groups: int = 4
    unet_norm_groups: int = 8
    image_size: int = 64


def build_tokenizer(config: ToyModelConfig = ToyModelConfig()):
    """A word-level tokenizer for the toy vocabulary: lower-cased, whitespace split, <bos> ... <eos>."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *VOCABULARY])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = article_normalizer()
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=config.max_length,
    )


def build_components(config: ToyModelConfig = ToyModelConfig()) -> dict:
    """Fresh (randomly initialised) pipeline components; seed torch before calling for reproducibility."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tokenizer(config)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=config.text_hidden,
            intermediate_size=2 * config.text_hidden,
            num_hidden_layers=config.text_layers,
            num_attention_heads=config.text_heads,
            max_position_embeddings=config.max_length,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    levels = len(config.vae_channels)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=config.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=config.latent_channels,
        layers_per_block=config.vae_layers_per_block,
        norm_num_groups=config.vae_norm_groups,
        sample_size=config.image_size,
        mid_block_add_attention=False,
    )
    unet = UNet2DConditionModel(
        sample_size=config.image_size // 2 ** (levels - 1),
        in_channels=config.latent_channels,
        out_channels=config.latent_channels,
        block_out_channels=config.unet_channels,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=config.text_hidden,
        attention_head_dim=config.unet_head_dim,
        norm_num_groups=config.unet_norm_groups,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, unet=unet, scheduler=scheduler)


def assemble_pipeline(components: dict):
    """A StableDiffusionPipeline from the components, without a safety checker."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
