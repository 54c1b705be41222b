"""How long ``imposter toy train`` takes on this machine, stage by stage, without running it whole.

    OMP_NUM_THREADS=2 python benchmarks/toy_train_time.py      # about 25 minutes on 2 free cores

The VAE, decoder and denoiser stages of the recipe (``ToyTrainConfig`` defaults) run at two step counts;
the difference gives the time per step and the rest the stage's fixed cost, which extrapolate to the
recipe's steps. The classifier (its fixed cost, rendering and round trips, is most of it) and the final
sanity check are timed whole. Run it on an otherwise idle machine: the estimate is only as
clean as the cores it gets. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from imposter.toyworld.classifier import ClassifierConfig, train_classifier
from imposter.toyworld.model import ToyModelConfig, build_components
from imposter.toyworld.train import (
    ToyTrainConfig,
    encode_examples,
    render_examples,
    train_denoiser,
    train_vae,
)


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unet-steps", type=int, default=3000, help="the shipped model's (default 3000)")
    parser.add_argument("--few", type=int, default=20, help="the smaller step count of each stage")
    parser.add_argument("--more", type=int, default=60, help="the larger")
    parser.add_argument(
        "--sanity-samples", type=int, default=2, help="the final check's samples per caption, timed whole"
    )
    args = parser.parse_args()
    recipe, classifier = replace(ToyTrainConfig(), unet_steps=args.unet_steps), ClassifierConfig()
    torch.set_num_threads(recipe.threads)
    quiet = dict(log=lambda _: None, progress=False)
    rows = []

    render = seconds(lambda: render_examples(recipe.examples, recipe.seed, progress=False))
    images, captions = render_examples(recipe.examples, recipe.seed, progress=False)
    rows.append(("render", "-", render))

    def stage(name: str, steps: int, run) -> None:
        few, more = seconds(lambda: run(args.few)), seconds(lambda: run(args.more))
        per_step = (more - few) / (args.more - args.few)
        fixed = max(0.0, few - per_step * args.few)
        rows.append((name, f"{steps} x {per_step:.3f} s + {fixed:.0f} s", fixed + per_step * steps))

    def vae(steps: int, decoder_only: bool = False) -> None:
        torch.manual_seed(0)
        model = build_components(ToyModelConfig())["vae"].float()
        config = replace(recipe, vae_steps=steps, decoder_steps=steps)
        train_vae(model, images, config, decoder_only=decoder_only, **quiet)

    stage("VAE", recipe.vae_steps, vae)
    stage("decoder", recipe.decoder_steps, lambda steps: vae(steps, decoder_only=True))
    trained_vae = build_components(ToyModelConfig())["vae"].float().eval()
    # timed whole: its fixed cost (rendering, round trips, evaluation) is most of it and caches renders
    classifier_s = seconds(lambda: train_classifier(trained_vae, classifier, **quiet))
    rows.append(("classifier (timed whole)", "-", classifier_s))

    def denoiser(steps: int) -> None:
        torch.manual_seed(0)
        components = build_components(ToyModelConfig())
        means, stds = encode_examples(trained_vae, images)
        train_denoiser(components, means, stds, captions, replace(recipe, unet_steps=steps), **quiet)

    stage("UNet + text encoder", recipe.unet_steps, denoiser)

    from imposter.models import load_pipeline
    from imposter.toyworld.classifier import load_classifier
    from imposter.toyworld.sanity import logged_sanity_check

    pipe = load_pipeline("toy", "cpu", log=lambda _: None)
    _, sanity = logged_sanity_check(pipe, load_classifier(), args.sanity_samples, recipe.seed, **quiet)
    rows.append((f"sanity check ({args.sanity_samples} samples per caption, timed whole)", "-", sanity))
    total = sum(row[2] for row in rows)
    print("| stage | steps x s/step + fixed | estimate (min) |\n|---|---|---:|")
    for name, formula, estimate in rows:
        print(f"| {name} | {formula} | {estimate / 60:.1f} |")
    print(f"| **total** | | **{total / 60:.1f}** |")


if __name__ == "__main__":
    main()
