"""Train the toy FLUX.1 pipeline on the toy world: ``imposter toy train --family flux --out DIR``.

1. Render the same seeded pretraining examples as the SD toy trainer (``train.render_examples``).
2. Take the SD toy pipeline's trained VAE and CLIP text encoder (frozen) and encode every example once.
3. Train the transformer and the T5 encoder together on FLUX.1's flow-matching loss, exactly as the FLUX
   family fine-tunes (``families.flux.FlowMatchingLoss``: uniform timesteps, ``x_t = (1 - s) x0 + s e``,
   velocity target ``e - x0``), with the SD trainer's loop (AdamW, warm-up and cosine lr, EMA, resumable
   checkpoints in ``OUT.work/``).
4. Save a FluxPipeline (safetensors) and measure its text-to-image sanity with the SD toy's classifier.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..families.base import Conditioning
from ..families.flux import FlowMatchingLoss
from ..fileio import atomic_directory, write_json
from .denoiser_loop import DenoiserLoop, caption_table, fit_denoiser
from .flux_model import ToyFluxConfig, assemble_flux_pipeline, build_flux_components
from .stages import Stages
from .train import encode_examples, render_examples


@dataclass(frozen=True)
class ToyFluxTrainConfig:
    """Training recipe; the defaults are what made the shipped toy-flux checkpoint (see its training.json)."""

    seed: int = 0
    examples: int = 40_000  # the SD toy trainer's examples (same seed: the same images)
    steps: int = 8_000  # about 0.3 s each at batch 32 on one CPU thread
    batch: int = 32
    lr: float = 5e-4
    warmup_steps: int = 200
    # FLUX.1 samples without classifier-free guidance (the family passes only the distilled guidance scale,
    # which a model without a guidance embedding ignores), so no empty captions are needed
    caption_dropout: float = 0.0
    ema_decay: float = 0.999
    threads: int = 1
    sanity_samples: int = 2  # generations per (subject, action) in the final sanity check
    checkpoint_every: int = 500


# Every setting but the data's: a rerun that changes only these starts the denoiser afresh.
RESTARTABLE = frozenset(f for f in ToyFluxTrainConfig.__dataclass_fields__ if f not in {"seed", "examples"})


@torch.no_grad()
def _clip_pooled(tokenizer, text_encoder, texts: list[str]) -> torch.Tensor:
    """CLIP's pooled output of each text, as ``FluxPipeline._get_clip_prompt_embeds`` computes it."""
    ids = tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return text_encoder(ids).pooler_output


def train_flux_denoiser(
    components: dict,
    means: torch.Tensor,
    stds: torch.Tensor,
    captions: list[str],
    config: ToyFluxTrainConfig,
    log: Callable[[str], None],
    progress: bool = True,
    checkpoints: Path | None = None,
) -> list[float]:
    """Train the transformer and T5 on flow matching; leaves the EMA weights in the models."""
    transformer, t5 = components["transformer"], components["text_encoder_2"]
    vocabulary, caption_index, empty = caption_table(captions)
    tokenizer_2 = components["tokenizer_2"]
    t5_ids = tokenizer_2(
        vocabulary, padding="max_length", max_length=tokenizer_2.model_max_length, truncation=True,
        return_tensors="pt",
    ).input_ids  # fmt: skip
    pooled = _clip_pooled(components["tokenizer"], components["text_encoder"], vocabulary)
    flow = FlowMatchingLoss.for_scheduler(components["scheduler"], guidance_embeds=False)

    def batch_loss(latents: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise, timesteps = flow.draw(generator, latents)
        return flow(
            transformer, latents, Conditioning(t5(t5_ids[chosen])[0], pooled[chosen]), noise, timesteps
        )

    loop = DenoiserLoop(
        config.steps, config.batch, config.lr, config.warmup_steps, config.caption_dropout, config.ema_decay,
        config.checkpoint_every, config.seed,
    )  # fmt: skip
    scale = components["vae"].config.scaling_factor
    return fit_denoiser(
        {"transformer": transformer, "t5": t5}, batch_loss, (means, stds, scale), caption_index, empty, loop,
        log, progress, checkpoints,
    )  # fmt: skip


def _encoded_examples(base: Path, model: ToyFluxConfig, train: ToyFluxTrainConfig, progress: bool):
    """The pipeline's components (the base's VAE and CLIP frozen) and the pretraining examples' latent
    posteriors (means, stds) and captions."""
    images, captions = render_examples(train.examples, train.seed, progress)
    torch.manual_seed(train.seed)
    components = build_flux_components(base, model)
    for part in (components["vae"], components["text_encoder"]):
        part.requires_grad_(False).eval()
    means, stds = encode_examples(components["vae"], images)
    return components, means, stds, captions


def train_toy_flux(
    out: str | Path,
    base: str | Path | None = None,
    train: ToyFluxTrainConfig | None = None,
    model: ToyFluxConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
    classifier_folder: str | Path | None = None,
) -> dict:
    """Train the toy FLUX.1 pipeline on the SD toy pipeline ``base`` (default: the bundled one) into ``out``
    (replaced atomically); returns the summary. Resumes from ``OUT.work/``, removed at the end.
    ``classifier_folder``: whose ``classifier/`` reads the sanity check (default: ``base``'s)."""
    from .classifier import load_classifier_weights
    from .plugin import toy_checkpoint
    from .sanity import logged_sanity_check

    train, model = train or ToyFluxTrainConfig(), model or ToyFluxConfig()
    base = Path(base) if base is not None else toy_checkpoint()
    out = Path(out)
    stages = Stages(
        out.with_name(out.name + ".work"),
        {"train": asdict(train), "model": asdict(model), "base": str(base)},
        log,
        restartable=RESTARTABLE,
    )
    torch.set_num_threads(train.threads)
    start = time.perf_counter()
    components, means, stds, captions = _encoded_examples(base, model, train, progress)
    stages.timings["render_encode"] = time.perf_counter() - start
    log(f"rendered and encoded {len(captions)} examples in {stages.timings['render_encode']:.0f} s")

    start = time.perf_counter()
    losses = train_flux_denoiser(
        components, means, stds, captions, train, log, progress, checkpoints=stages.folder / "denoiser"
    )
    stages.done("transformer", time.perf_counter() - start)
    log(f"transformer and T5 trained ({stages.timings['transformer']:.0f} s in this run)")

    pipe = assemble_flux_pipeline(components)
    for part in (pipe.transformer, pipe.text_encoder_2):
        part.requires_grad_(False)
    recognizer = load_classifier_weights(Path(classifier_folder) if classifier_folder else base)
    sanity, stages.timings["sanity"] = logged_sanity_check(
        pipe, recognizer, train.sanity_samples, train.seed, log, progress
    )
    summary = {
        "command": command,
        "base": str(base),
        "train": asdict(train),
        "model": asdict(model),
        "timings_s": {k: round(v, 1) for k, v in stages.timings.items()},
        "latent_scaling_factor": float(pipe.vae.config.scaling_factor),
        "transformer_parameters": sum(p.numel() for p in pipe.transformer.parameters()),
        "t5_parameters": sum(p.numel() for p in pipe.text_encoder_2.parameters()),
        "final_loss": float(np.mean(losses[-100:])),
        "sanity": sanity,
        "torch": torch.__version__,
    }
    with atomic_directory(out) as folder:
        pipe.save_pretrained(folder, safe_serialization=True)
        write_json(folder / "training.json", summary)
        (folder / "losses.json").write_text(json.dumps({"transformer": losses[::10]}))
    shutil.rmtree(stages.folder)
    return summary
