"""``imposter-authors``: what the authors' released code does, so "as released" can be compared with "as described".

From github.com/divyakraman/ImPosterDiffusion2024 (train1.py, models/imposter_lora/pipeline.py):
every UNet weight plus a rank-4 LoRA trained with Adam at lr 2e-6, one noise draw and timestep per
iteration and two separate updates (source, then driving), float32; sampling with the driving caption
for the first K = 6 of 50 DDIM steps; frequency guidance coded but without effect (the loss is
re-wrapped in a fresh tensor under ``no_grad``, so no gradient reaches the latents), hence none here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import FinetuneConfig
from ..finetune import finetune_full_authors
from ..personalizations import Personalization, UnetPersonalization
from .imposter import NO_GUIDANCE, ImPosterMethod, loss_summary, training_batch

if TYPE_CHECKING:
    from ..prepared import Engine, PreparedPair


class AuthorsMethod(ImPosterMethod):
    """The released code's behaviour: full-UNet fine-tune, K = 6, no effective guidance."""

    families = ("sd",)  # the released code fine-tunes SD 2.1's whole UNet
    fixed_finetune = {"kind": "full-authors", "learning_rate": 2e-6}

    def __init__(self) -> None:
        super().__init__(
            "imposter-authors",
            "ImPoster as released: full-UNet Adam 2e-6, two updates per iteration, K = 6, no guidance",
            {"k": 6, **NO_GUIDANCE},
        )

    def personalize(
        self, engine: Engine, pair: PreparedPair, finetune: FinetuneConfig, progress: bool = True
    ) -> Personalization:
        latents, embeds = training_batch(engine, pair)
        state, losses = finetune_full_authors(
            engine.denoiser, engine.scheduler, latents, embeds, finetune, progress
        )
        return UnetPersonalization(
            method=self.name, info=loss_summary(losses), state=state, unet_config=dict(engine.denoiser.config)
        )

    def load_personalization(self, directory: Path, metadata: dict[str, Any]) -> Personalization:
        return UnetPersonalization.load(directory, self.name, metadata.get("info"))
