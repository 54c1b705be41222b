"""A negative result kept runnable (issue 19, direction 5): keypoints carried by the model's own features.

DIFT (Tang et al., 2306.03881) finds correspondences between two images from a diffusion model's UNet
features: noise each image's latents to a timestep, run the UNet with the image's caption, read an up
block's output, and match by cosine similarity. Could it carry the source's joints onto the driving figure
(or the reverse), so that imposter needs no keypoints? This probe measures it on the toy model with
the renders' own joints as the truth: every source joint's feature (bilinear, averaged over ``--noises``
noise draws as DIFT does) is matched within the driving figure's mask, by argmax and by a soft-argmax, and
the distance to the driving figure's true joint is the error, in pixels of the 64 px image:

    python benchmarks/toy_dift_probe.py                 # 24 tune pairs, about a minute on one core

The floor beside it knows no features: each joint's place in the source figure's bounding box, carried to
the same place in the driving figure's box. The bar a keypoint estimate must meet for imposter to
keep its pose gain is about 0.5 px (README: 1 px of jitter halves the gain).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from imposter.models import load_pipeline
from imposter.retarget import JOINTS, figure_mask
from imposter.toyworld.pairs import make_pairs

SIZE = 64  # the toy image's side


def block_features(pipe, image, prompt: str, timestep: int, noises: int, seed: int) -> list[torch.Tensor]:
    """Each up block's output for ``image`` noised to ``timestep`` (mean over ``noises`` draws), C x h x w."""
    outputs: dict[int, torch.Tensor] = {}
    hooks = [
        block.register_forward_hook(lambda _m, _i, out, k=k: outputs.__setitem__(k, out))
        for k, block in enumerate(pipe.unet.up_blocks)
    ]
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1)
    with torch.no_grad():
        latents = pipe.vae.encode(pixels.permute(2, 0, 1)[None]).latent_dist.mean
        latents = (latents * pipe.vae.config.scaling_factor).expand(noises, -1, -1, -1)
        ids = pipe.tokenizer(
            prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length, return_tensors="pt"
        ).input_ids
        embeds = pipe.text_encoder(ids)[0].expand(noises, -1, -1)
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
        steps = torch.full((noises,), timestep, dtype=torch.long)
        noisy = pipe.scheduler.add_noise(latents, noise, steps) if timestep else latents
        pipe.unet(noisy, steps, encoder_hidden_states=embeds)
    for hook in hooks:
        hook.remove()
    return [outputs[k].mean(0) for k in sorted(outputs)]


def carried(source: torch.Tensor, driving: torch.Tensor, points: np.ndarray, mask: np.ndarray, temperature):
    """Where ``points`` of the source land in the driving figure by feature similarity: (argmax, soft)."""
    grid = torch.from_numpy((points + 0.5) / SIZE * 2 - 1).float()[None, None]
    queries = F.normalize(F.grid_sample(source[None], grid, align_corners=False)[0, :, 0].T, dim=1)
    upsampled = F.interpolate(driving[None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0]
    similarity = queries @ F.normalize(upsampled, dim=0).reshape(len(upsampled), -1)
    similarity[:, ~torch.from_numpy(mask.reshape(-1))] = -torch.inf
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    coords = torch.tensor(np.stack([cols.ravel(), rows.ravel()], 1), dtype=torch.float32)
    soft = torch.softmax(similarity / temperature, dim=1) @ coords
    return coords[similarity.argmax(1)].numpy(), soft.numpy()


def box_carried(points: np.ndarray, source_mask: np.ndarray, driving_mask: np.ndarray) -> np.ndarray:
    """The floor: each point's place in the source figure's bounding box, at that place in the driving's."""

    def box(mask):
        rows, cols = np.nonzero(mask)
        return np.array([cols.min(), rows.min()]), np.array([cols.max(), rows.max()])

    (a0, a1), (b0, b1) = box(source_mask), box(driving_mask)
    return (points - a0) / np.maximum(a1 - a0, 1) * (b1 - b0) + b0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--split", default="tune")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[0, 100, 300, 500])
    parser.add_argument("--noises", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.02)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = load_pipeline("toy", log=lambda _line: None)
    pairs = make_pairs(args.pairs, 0, args.split)
    errors: dict[str, list[np.ndarray]] = {"bounding box (no features)": []}
    for number, pair in enumerate(pairs):
        truth_source, truth_driving = pair.source_keypoints, pair.driving_keypoints
        source = np.array([truth_source[j] for j in JOINTS], dtype=np.float64)
        truth = np.array([truth_driving[j] for j in JOINTS], dtype=np.float64)
        source_mask, _ = figure_mask(np.asarray(pair.source_image.convert("RGB")))
        driving_mask, _ = figure_mask(np.asarray(pair.driving_image.convert("RGB")))
        errors["bounding box (no features)"].append(
            np.linalg.norm(box_carried(source, source_mask, driving_mask) - truth, axis=1)
        )
        for timestep in args.timesteps:
            features = [
                block_features(pipe, image, prompt, timestep, args.noises, seed=number)
                for image, prompt in (
                    (pair.source_image, pair.source_prompt),
                    (pair.driving_image, pair.driving_prompt),
                )
            ]
            for block, (from_source, from_driving) in enumerate(zip(*features, strict=True)):
                hard, soft = carried(from_source, from_driving, source, driving_mask, args.temperature)
                side = from_source.shape[-1]
                for kind, found in (("argmax", hard), ("soft-argmax", soft)):
                    key = f"t {timestep}, up block {block} ({side}x{side}), {kind}"
                    errors.setdefault(key, []).append(np.linalg.norm(found - truth, axis=1))
    print(f"{args.pairs} {args.split} pairs, {len(JOINTS)} joints each; error in px of the 64 px image\n")
    print("| carried by | mean | median | within 1 px |")
    print("|---|---:|---:|---:|")
    for key, values in errors.items():
        e = np.concatenate(values)
        print(f"| {key} | {e.mean():.2f} | {np.median(e):.2f} | {np.mean(e <= 1):.0%} |")


if __name__ == "__main__":
    main()
