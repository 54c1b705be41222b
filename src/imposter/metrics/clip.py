"""CLIP score: how well a generated image matches its target prompt.

The score is the cosine similarity of CLIP's projected image and text embeddings. The paper uses
``openai/clip-vit-base-patch32`` and reports about 0.29-0.31. The authors' ``eval.py`` reads
``logits_per_image``, which is this cosine times CLIP's logit scale (100); we report the cosine itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from imposter.errors import ConfigError
from imposter.metrics.base import EvalItem, Metric, batches, load_metric_model

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"  # the model of the authors' eval.py


class ClipScore(Metric):
    """Cosine similarity between the CLIP embeddings of the generated image and the target prompt."""

    keys = ("clip",)

    def __init__(
        self, model: str | None = None, device: str | torch.device = "cpu", batch_size: int = 16
    ) -> None:
        model = model or DEFAULT_CLIP_MODEL
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        from transformers import AutoProcessor, CLIPModel

        def load(local_files_only: bool):
            clip = CLIPModel.from_pretrained(model, use_safetensors=True, local_files_only=local_files_only)
            return clip, AutoProcessor.from_pretrained(model, local_files_only=local_files_only)

        clip, processor = load_metric_model("CLIP", model, load)
        self.model = clip.to(device).eval()
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Projected, L2-normalized image embeddings, one row per image."""
        pixels = self.image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        features = self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device))
        return F.normalize(features.pooler_output.float(), dim=-1)

    @torch.no_grad()
    def embed_texts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Projected, L2-normalized text embeddings; prompts past the text model's length are cut."""
        tokens = self.tokenizer(
            list(prompts),
            padding=True,
            truncation=True,
            max_length=self.model.config.text_config.max_position_embeddings,
            return_tensors="pt",
        ).to(self.device)
        features = self.model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
        return F.normalize(features.pooler_output.float(), dim=-1)

    def score(self, items: Sequence[EvalItem]) -> list[dict[str, float]]:
        scores: list[float] = []
        for batch in batches(items, self.batch_size):
            images = self.embed_images([item.generated for item in batch])
            texts = self.embed_texts([item.target_prompt for item in batch])
            scores += (images * texts).sum(dim=-1).cpu().tolist()
        return [{"clip": value} for value in scores]
