"""Stages run again on a trained toy pipeline, in place: its classifier anew (``imposter toy classifier``) and
its decoder's outline stage (``imposter toy decoder``)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..fileio import atomic_directory, write_json
from .classifier import ClassifierConfig, save_classifier, train_classifier
from .train import ToyTrainConfig, render_examples, train_vae

DECODER_SETTINGS = ("decoder_steps", "decoder_lr", "edge_weight", "edge_width")


def retrain_classifier(
    folder: str | Path,
    classifier: ClassifierConfig | None = None,
    sanity_samples: int = 4,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Train the classifier of the toy pipeline in ``folder`` anew (against its VAE), measure the pipeline's
    text-to-image sanity with it, and record both in ``folder/training.json``; returns the accuracy report."""
    from ..models import load_pipeline
    from .sanity import sanity_check

    folder, classifier = Path(folder), classifier or ClassifierConfig()
    pipe = load_pipeline(str(folder), "cpu", log=lambda _: None)
    start = time.perf_counter()
    recognizer, report = train_classifier(pipe.vae, classifier, log, progress)
    seconds = time.perf_counter() - start
    log(f"classifier trained in {seconds:.0f} s: {json.dumps(report)}")
    with atomic_directory(folder / ".classifier.new") as staged:  # staged/classifier, then one rename
        save_classifier(recognizer, classifier, report, staged)
    shutil.rmtree(folder / "classifier", ignore_errors=True)
    (folder / ".classifier.new" / "classifier").replace(folder / "classifier")
    shutil.rmtree(folder / ".classifier.new")
    summary = json.loads((folder / "training.json").read_text())
    summary["classifier"] = {"config": asdict(classifier), "accuracy": report, "command": command}
    summary["timings_s"]["classifier"] = round(seconds, 1)
    if sanity_samples > 0:
        summary["sanity"] = sanity_check(pipe, recognizer, samples=sanity_samples, progress=progress)
        overall = {k: v for k, v in summary["sanity"].items() if k.endswith("_accuracy") and "per_" not in k}
        log(f"sanity: {json.dumps(overall)}")
    write_json(folder / "training.json", summary)
    return report


def refine_decoder(
    folder: str | Path,
    train: ToyTrainConfig | None = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run the decoder stage of ``train`` on the toy pipeline in ``folder`` (its VAE is replaced; the encoder,
    so the latents, the UNet and the text encoder stay as they are) and record it in ``training.json``.

    It renders the same pretraining examples as ``imposter toy train`` with the same seed, so the result is
    the stage that run would have made. The classifier learnt from round trips through the old decoder:
    retrain it after (``imposter toy classifier --model DIR``). Returns the updated training summary.
    """
    from diffusers import AutoencoderKL

    folder, train = Path(folder), train or ToyTrainConfig()
    summary = json.loads((folder / "training.json").read_text())
    recorded = summary["train"]
    different = [k for k in ("seed", "examples", "vae_batch") if recorded.get(k) != getattr(train, k)]
    if different:
        raise ConfigError(f"{folder} was trained with other {', '.join(different)}; refine it with the same")
    torch.set_num_threads(train.threads)
    images, _ = render_examples(train.examples, train.seed, progress)
    vae = AutoencoderKL.from_pretrained(folder / "vae").float()
    start = time.perf_counter()
    losses = train_vae(vae, images, train, log, progress, decoder_only=True)
    seconds = time.perf_counter() - start
    log(f"decoder refined in {seconds:.0f} s")
    with atomic_directory(folder / "vae") as staged:
        vae.save_pretrained(staged, safe_serialization=True)
    summary["train"].update(
        {k: getattr(train, k) for k in DECODER_SETTINGS}
    )  # the rest made the other stages
    summary["timings_s"]["decoder"] = round(seconds, 1)
    summary["decoder_command"] = command
    summary["final_decoder_loss"] = float(np.mean(losses[-100:]))
    write_json(folder / "training.json", summary)
    return summary
