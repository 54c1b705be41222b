"""Issue 20's 30 dB: what the toy VAE's reconstruction gains from more latent channels, at a fixed budget.

Trains the VAE stage alone (the shipped recipe's loss, lr and batch; no decoder stage) for ``--steps`` on
``--examples`` freshly rendered pretraining figures, with ``--latent-channels`` (the shipped model: 4), then
puts the ground truth of ``--pairs`` tune pairs through it and reports PSNR and pose IoU (the table's VAE
ceiling, measured the same way: ``imposter.toyworld.metric.ToyGroundTruth``). One JSON line per run in
``--out``/probe.jsonl; the shipped VAE is scored beside it (``--shipped``) for the same pairs.

    OMP_NUM_THREADS=1 python benchmarks/toy_vae_probe.py --latent-channels 4 --steps 600
    OMP_NUM_THREADS=1 python benchmarks/toy_vae_probe.py --latent-channels 8 --steps 600
    OMP_NUM_THREADS=1 python benchmarks/toy_vae_probe.py --latent-channels 8 --steps 2000 --decoder-steps 1000
    python benchmarks/toy_vae_probe.py --steps 2000 --decoder-steps 1000 --examples 40000 --precision bf16
    python benchmarks/toy_vae_probe.py --shipped     # or --model FOLDER: a toy pipeline's VAE
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def scores(vae, pairs) -> dict[str, float]:
    """Mean PSNR and pose IoU of each pair's ground truth through ``vae`` (decoded from the posterior mean)."""
    from PIL import Image

    from imposter.metrics.base import EvalItem
    from imposter.toyworld.metric import ToyGroundTruth
    from imposter.toyworld.train import array_pixels

    targets = np.stack([np.asarray(pair.target_image.convert("RGB")) for pair in pairs])
    with torch.no_grad():
        latents = vae.encode(array_pixels(targets)).latent_dist.mean
        pixels = vae.decode(latents).sample
    images = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    items = [
        EvalItem(Image.fromarray(image), pair.source_image, pair.driving_image, "", pair.target_image)
        for image, pair in zip(images, pairs, strict=True)
    ]
    found = ToyGroundTruth().score(items)
    return {key: float(np.mean([s[key] for s in found])) for key in ("psnr", "pose_iou")}


def main() -> None:
    from imposter.toyworld.model import ToyModelConfig, build_components
    from imposter.toyworld.pairs import make_pairs
    from imposter.toyworld.steps import PRECISIONS
    from imposter.toyworld.train import ToyTrainConfig, render_examples, train_vae

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-channels", type=int, default=4)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--decoder-steps", type=int, default=0, help="then the decoder's outline stage")
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="the stages' autocast")
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--shipped", action="store_true", help="score the bundled model's VAE instead")
    parser.add_argument("--model", type=Path, default=None, help="score this toy pipeline's VAE instead")
    parser.add_argument("--out", type=Path, default=Path("runs/toy-vae-probe"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = make_pairs(args.pairs, 0, "tune")
    start = time.perf_counter()
    if args.shipped or args.model:
        from diffusers import AutoencoderKL

        from imposter.toyworld.plugin import TOY, toy_checkpoint

        folder = args.model or toy_checkpoint(TOY)
        vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
        setting = {"model": str(args.model)} if args.model else {"shipped": True}
    else:
        torch.manual_seed(0)
        vae = build_components(ToyModelConfig(latent_channels=args.latent_channels))["vae"]
        images, _ = render_examples(args.examples, 0, progress=False)
        train = replace(
            ToyTrainConfig(), vae_steps=args.steps, decoder_steps=args.decoder_steps, precision=args.precision
        )
        train_vae(vae, images, train, log=lambda _: None, progress=True)
        if args.decoder_steps:
            train_vae(vae, images, train, log=lambda _: None, progress=True, decoder_only=True)
        setting = {"latent_channels": args.latent_channels, "steps": args.steps, "examples": args.examples}
        setting |= {"decoder_steps": args.decoder_steps} if args.decoder_steps else {}
        setting |= {"precision": args.precision} if args.precision != "fp32" else {}
    row = {
        **setting,
        "pairs": args.pairs,
        "seconds": round(time.perf_counter() - start),
        **scores(vae, pairs),
    }
    with (args.out / "probe.jsonl").open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(row)


if __name__ == "__main__":
    main()
