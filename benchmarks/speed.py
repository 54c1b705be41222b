"""Speed of fine-tuning and sampling, ours against the naive way of doing the same work.

    python benchmarks/speed.py --config toy                 # the bundled toy model, CPU
    python benchmarks/speed.py --config sd21 --device cuda  # SD-2.1-base-shaped, random weights

Compute does not depend on the weights, so an SD-2.1-shaped pipeline with random weights times what
a user with the real checkpoint sees. Printed as a markdown table; nothing is asserted.

What is compared (each a habit of the library, measured against its naive alternative):
- fine-tuning: both (image, caption) pairs in one batch per step, vs one pair per forward;
- sampling: classifier-free guidance as one batched UNet call, vs two calls; all seeds in one batch,
  vs one seed at a time; frequency guidance on, vs off (its cost);
- on CUDA: bf16/fp16 weights with SDPA attention (the default), vs float32.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from imposter import FinetuneConfig, ImPoster, SamplingConfig
    from imposter.finetune import finetune_lora
    from imposter.methods import get_method
    from imposter.methods.imposter import training_batch
    from imposter.sampling import denoise
    from imposter.testing import SD21_BASE, save_random_pipeline
    from imposter.toyworld.pairs import make_pairs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["toy", "sd21"], default="toy")
    parser.add_argument(
        "--model", default=None, help="time this diffusers folder or hub id instead of --config"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--train-steps", type=int, default=20, help="fine-tuning steps per timing")
    parser.add_argument("--sample-steps", type=int, default=10, help="denoising steps per timing")
    parser.add_argument("--seeds", type=int, default=4, help="images per sampling run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or (
            "toy"
            if args.config == "toy"
            else str(save_random_pipeline("sd", Path(tmp), shape=SD21_BASE, pad_token="!"))
        )
        engine = ImPoster.from_pretrained(model, args.device, args.dtype)
        device = engine.device
        toy = make_pairs(1, 0)[0]
        pair = engine.prepare(toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt)
        rows = []

        latents, embeds = training_batch(engine, pair)
        ft = FinetuneConfig(steps=args.train_steps)

        def batched_finetune():
            finetune_lora(engine.unet, engine.scheduler, latents, embeds, ft, progress=False)

        def one_pair_per_forward():
            for i in range(2):
                finetune_lora(
                    engine.unet, engine.scheduler, latents[i : i + 1], embeds[i : i + 1], ft, progress=False
                )

        t_batched = timed(batched_finetune, args.repeats, device)
        t_single = timed(one_pair_per_forward, args.repeats, device)
        rows.append(
            ("fine-tune, both pairs per batch (ours)", f"{args.train_steps / t_batched:.2f} it/s", "")
        )
        rows.append(
            (
                "fine-tune, one pair per forward",
                f"{args.train_steps / t_single:.2f} it/s",
                f"batching pairs: x{t_single / t_batched:.2f}",
            )
        )

        learned = engine.personalize(pair, "imposter", FinetuneConfig(steps=1), progress=False)
        method = get_method("imposter")
        seeds = list(range(args.seeds))
        on = SamplingConfig(steps=args.sample_steps)  # the defaults: guidance on
        off = SamplingConfig(steps=args.sample_steps, amp_scale=0.0, phase_scale=0.0)
        uncond, target = engine.embed(pair, ""), engine.embed(pair, pair.target_prompt)

        def sample(config, seed_list):
            method.sample(engine, pair, learned, engine.initial_noise(seed_list, pair), config, False)

        def two_call_cfg():
            # the unbatched alternative: the conditional and unconditional UNet calls made separately
            noise = engine.initial_noise(seeds, pair)

            class TwoCalls(torch.nn.Module):
                dtype = engine.unet.dtype

                def forward(self, sample, t, encoder_hidden_states):
                    halves = [
                        engine.unet(s, t, encoder_hidden_states=e).sample
                        for s, e in zip(sample.chunk(2), encoder_hidden_states.chunk(2), strict=True)
                    ]
                    return type("Out", (), {"sample": torch.cat(halves)})()

            denoise(
                TwoCalls(),
                engine.scheduler,
                noise,
                lambda i: target,
                uncond,
                7.5,
                args.sample_steps,
                progress=False,
            )

        with learned.active(engine):
            ours = timed(lambda: sample(on, seeds), args.repeats, device)
            no_guidance = timed(lambda: sample(off, seeds), args.repeats, device)
            one_by_one = timed(lambda: [sample(on, [s]) for s in seeds], args.repeats, device)
            two_calls = timed(two_call_cfg, args.repeats, device)
        image_steps = args.sample_steps * args.seeds
        for name, seconds, note in (
            ("sampling (ours): seeds batched, CFG batched, guidance on", ours, ""),
            ("sampling, guidance off", no_guidance, f"guidance costs {100 * (ours / no_guidance - 1):.0f}%"),
            ("sampling, one seed at a time", one_by_one, f"batching seeds: x{one_by_one / ours:.2f}"),
            (
                "sampling, guidance off, CFG as two UNet calls",
                two_calls,
                f"batching CFG: x{two_calls / no_guidance:.2f}",
            ),
        ):
            rows.append((name, f"{image_steps / seconds:.2f} image-steps/s", note))

        print(
            f"\n{args.config} on {device} ({str(engine.dtype).removeprefix('torch.')}, {torch.get_num_threads()} CPU threads), "
            f"{args.seeds} seeds, {args.sample_steps} denoising steps, {args.train_steps} fine-tuning steps\n"
        )
        print("| what | speed | note |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
