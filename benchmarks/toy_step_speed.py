"""Seconds per training step of each toy model, float32 against bfloat16 autocast (``--precision bf16``).

One step as the trainers take it (forward, loss, backward, AdamW) on random inputs at each stage's batch:
the VAE (32 images of 64x64), the recognizer (128), the keypoint detector (32) and the UNet with its text
encoder (64 latents of 16x16). The mean of ``--steps`` steps after two warm-up steps, on ``--threads``
threads. Run it on an otherwise idle machine.

    python benchmarks/toy_step_speed.py
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def models() -> dict:
    """Each stage's model and a function of it giving one step's loss, at the stage's batch."""
    from imposter.toyworld.classifier import ToyClassifier
    from imposter.toyworld.keypoint_detector import ToyKeypointDetector
    from imposter.toyworld.model import ToyModelConfig, build_components

    torch.manual_seed(0)
    parts = build_components(ToyModelConfig())
    vae, unet, text = parts["vae"], parts["unet"], parts["text_encoder"]
    images32, images128 = torch.rand(32, 3, 64, 64) * 2 - 1, torch.rand(128, 3, 64, 64) * 2 - 1
    latents, tokens = torch.randn(64, 4, 16, 16), torch.randint(0, len(parts["tokenizer"]), (64, 16))

    def vae_loss():
        posterior = vae.encode(images32).latent_dist
        decoded = vae.decode(posterior.mean + posterior.std * torch.randn_like(posterior.mean)).sample
        return (decoded.float() - images32).abs().mean()

    def unet_loss():
        timesteps = torch.randint(0, 1000, (64,))
        predicted = unet(latents, timesteps, encoder_hidden_states=text(tokens)[0]).sample
        return F.mse_loss(predicted.float(), latents)

    classifier, detector = ToyClassifier(), ToyKeypointDetector()
    return {
        "vae": ([vae], vae_loss),
        "recognizer": ([classifier], lambda: sum(o.float().mean() for o in classifier(images128))),
        "keypoint detector": ([detector], lambda: detector(images32).float().mean()),
        "unet + text encoder": ([unet, text], unet_loss),
    }


def seconds_per_step(modules, loss, precision: str, steps: int) -> float:
    from imposter.toyworld.steps import mixed_precision

    optimizer = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=1e-4)
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        optimizer.zero_grad()
        with mixed_precision(precision):
            value = loss()
        value.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| stage | fp32 s/step | bf16 s/step |\n|---|---:|---:|")
    for name, (modules, loss) in models().items():
        fp32, bf16 = (seconds_per_step(modules, loss, p, args.steps) for p in ("fp32", "bf16"))
        print(f"| {name} | {fp32:.3f} | {bf16:.3f} |", flush=True)


if __name__ == "__main__":
    main()
