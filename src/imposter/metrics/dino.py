"""DINO score: how much the generated image looks like the source subject.

Cosine similarity of self-supervised ViT features of the source and the generated image. Two variants:

- ``"authors"`` (default, comparable with the paper's table): ``facebook/dinov2-base``, features = the
  whole ``last_hidden_state`` flattened (257 tokens x 768 for a 224 crop), as in the authors' ``eval.py``.
  Patch tokens make this score sensitive to where things are, not only to what they are.
- ``"dreambooth"``: DreamBooth's DINO metric, ``facebook/dino-vits16`` and the CLS token only.

Images go through the model's own image processor (resize and center crop).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from imposter.errors import ConfigError
from imposter.metrics.base import SourceSimilarity, load_metric_model

# variant -> (default model, which features): "tokens" = all tokens flattened, "cls" = the CLS token
DINO_VARIANTS = {
    "authors": ("facebook/dinov2-base", "tokens"),
    "dreambooth": ("facebook/dino-vits16", "cls"),
}


class DinoScore(SourceSimilarity):
    """Cosine similarity between DINO features of the source and the generated image."""

    keys = ("dino",)

    def __init__(
        self,
        model: str | None = None,
        variant: str = "authors",
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        if variant not in DINO_VARIANTS:
            raise ConfigError(f"unknown DINO variant {variant!r}; choose one of {sorted(DINO_VARIANTS)}.")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        default_model, self.features = DINO_VARIANTS[variant]
        model = model or default_model
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        def load(local_files_only: bool):
            config = AutoConfig.from_pretrained(model, local_files_only=local_files_only)
            # DINO v1 checkpoints are plain ViTs saved without the (unused) pooler
            extra = {"add_pooling_layer": False} if config.model_type == "vit" else {}
            return (
                AutoModel.from_pretrained(
                    model, config=config, use_safetensors=True, local_files_only=local_files_only, **extra
                ),
                AutoImageProcessor.from_pretrained(model, local_files_only=local_files_only),
            )

        self.model, self.image_processor = load_metric_model("DINO", model, load)
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """One feature row per image: all tokens flattened ("authors") or the CLS token ("dreambooth")."""
        pixels = self.image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        hidden = self.model(pixel_values=pixels["pixel_values"].to(self.device)).last_hidden_state.float()
        return hidden.flatten(1) if self.features == "tokens" else hidden[:, 0]
