"""Issue 20's class >= 95%: does the bundled model's denoiser draw the right class more often with more steps?

Continues the bundled pipeline's UNet and text encoder (from its saved EMA weights, a fresh AdamW, warm-up
then cosine over ``--steps``, the shipped recipe's batch and loss) on the same pretraining examples
(``imposter toy train``'s seed), then measures text-to-image sanity (``imposter toy eval``: DDIM 50, CFG 7.5,
read by the bundled classifier) with ``--samples`` per caption. The bundled model is measured the same way
(``--steps 0``). One JSON line per run in ``--out``/probe.jsonl. A second cosine cycle is not a longer
first one: it says whether the denoiser is still learning the classes at 6,000 steps, not what a one-command
recipe with more steps reaches.

    python benchmarks/toy_unet_probe.py --steps 0
    python benchmarks/toy_unet_probe.py --steps 2000 --lr 2e-4
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch


def main() -> None:
    from diffusers import StableDiffusionPipeline

    from imposter.toyworld.classifier import load_classifier
    from imposter.toyworld.plugin import TOY, toy_checkpoint
    from imposter.toyworld.sanity import sanity_check
    from imposter.toyworld.train import ToyTrainConfig, encode_examples, render_examples, train_denoiser

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="denoiser steps on top of the bundled model")
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate of the second cycle")
    parser.add_argument("--samples", type=int, default=4, help="generations per caption in the sanity check")
    parser.add_argument("--out", type=Path, default=Path("runs/toy-unet-probe"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(ToyTrainConfig.threads)
    folder = toy_checkpoint(TOY)
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    shipped = json.loads((folder / "training.json").read_text())["train"]
    start = time.perf_counter()
    if args.steps:
        train = replace(
            ToyTrainConfig(**{k: v for k, v in shipped.items() if k in ToyTrainConfig.__dataclass_fields__}),
            unet_steps=args.steps,
            unet_lr=args.lr,
            warmup_steps=100,
        )
        images, captions = render_examples(train.examples, train.seed, progress=False)
        means, stds = encode_examples(pipe.vae, images)
        del images
        components = {
            "unet": pipe.unet, "text_encoder": pipe.text_encoder, "tokenizer": pipe.tokenizer,
            "scheduler": pipe.scheduler, "vae": pipe.vae,
        }  # fmt: skip
        for module in (pipe.unet, pipe.text_encoder):
            module.requires_grad_(True)
        train_denoiser(components, means, stds, captions, train, log=print, progress=True)
        for module in (pipe.unet, pipe.text_encoder):
            module.requires_grad_(False)
    seconds = round(time.perf_counter() - start)
    sanity = sanity_check(pipe, load_classifier(folder), samples=args.samples, seed=0)
    row = {"extra_steps": args.steps, "lr": args.lr if args.steps else None, "samples": args.samples}
    row |= {"train_seconds": seconds, **{k: v for k, v in sanity.items() if k != "per_action_accuracy"}}
    with (args.out / "probe.jsonl").open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(row)


if __name__ == "__main__":
    main()
