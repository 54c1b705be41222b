"""Does a longer-trained toy UNet personalize better? Continue the bundled model's UNet and text encoder.

    OMP_NUM_THREADS=2 python benchmarks/toy_continue_unet.py --steps 4000 --lr 2.5e-4 --out runs/toy-continued

An experiment, not how the bundled model is made (``imposter toy train`` is): the bundled UNet and text
encoder train ``--steps`` more steps on the same 40,000 pretraining examples (render seed 0), the training
stage's own loop (``toyworld.train.train_denoiser``: AdamW, warm-up 100 then cosine, EMA, min-SNR-5),
seed 1; the VAE and the recognizer are the bundled ones. Resumable (checkpoints in OUT.state). Then probe it
with ``benchmarks/toy_subject_probe.py --model OUT``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--lr", type=float, default=2.5e-4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    from imposter import ImPoster
    from imposter.toyworld.plugin import toy_checkpoint
    from imposter.toyworld.train import ToyTrainConfig, encode_examples, render_examples, train_denoiser

    out = Path(args.out)
    torch.set_num_threads(2)
    torch.manual_seed(1)
    pipe = ImPoster.from_pretrained("toy", device="cpu").pipe
    for module in (pipe.unet, pipe.text_encoder):
        module.float().requires_grad_(True)
    config = ToyTrainConfig(seed=1, unet_steps=args.steps, unet_lr=args.lr, warmup_steps=100)
    images, captions = render_examples(config.examples, 0, progress=False)
    means, stds = encode_examples(pipe.vae, images)
    components = {
        name: getattr(pipe, name) for name in ("unet", "text_encoder", "tokenizer", "scheduler", "vae")
    }
    start = time.perf_counter()
    losses = train_denoiser(
        components, means, stds, captions, config, print, True, checkpoints=out.with_name(out.name + ".state")
    )
    print(f"trained in {time.perf_counter() - start:.0f} s; final loss {sum(losses[-100:]) / 100:.4f}")
    for module in (pipe.unet, pipe.text_encoder):
        module.requires_grad_(False)
    pipe.save_pretrained(out, safe_serialization=True)
    shutil.copytree(toy_checkpoint() / "classifier", out / "classifier", dirs_exist_ok=True)
    shutil.copy(toy_checkpoint() / "training.json", out / "training.json")


if __name__ == "__main__":
    main()
