"""Speed of fine-tuning and sampling, ours against the naive way of doing the same work.

    python benchmarks/speed.py --config toy                 # the bundled toy model, CPU
    python benchmarks/speed.py --config sd21 --device cuda  # SD-2.1-base-shaped, random weights
    python benchmarks/speed.py --config sdxl --device cuda  # SDXL-base-1.0-shaped, 1024 x 1024
    python benchmarks/speed.py --config flux --device cuda  # FLUX.1-dev-shaped (12 B), 1024 x 1024
    python benchmarks/speed.py --config flux-tiny           # the same code on the tiny test shapes, CPU

Compute does not depend on the weights, so a pipeline of the real checkpoint's sizes with random weights
(imposter.testing: SD21_BASE, SDXL_BASE, FLUX_DEV, each citing its configs)
times what a user with the real checkpoint sees. Printed as a markdown table; nothing is asserted.

What is compared (each a habit of the library, measured against its naive alternative):
- fine-tuning: both (image, caption) pairs in one batch per step, vs one pair per forward;
- sampling: classifier-free guidance as one batched UNet call, vs two calls; all seeds in one batch,
  vs one seed at a time; frequency guidance on, vs off (its cost);
- on CUDA: bf16/fp16 weights with SDPA attention (the default), vs float32.

SDXL and FLUX.1 (``--config sdxl|flux``, or ``-tiny``): seconds per fine-tuning step (the family's LoRA
targets and loss, both pairs in one batch) with gradient checkpointing (the family's default) and without,
and seconds per denoising step of our sampler (stepwise prompts and frequency guidance through the
pipeline's ``callback_on_step_end``) against the same pipeline called plainly with the target prompt (no
callback, no guidance), both with the LoRA loaded. The real shapes need a large GPU: FLUX.1's random
transformer and T5 are built on the device in the run's dtype (about 33 GB in bf16).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

CONFIGS = ("toy", "sd21", "sdxl", "flux", "sdxl-tiny", "flux-tiny")


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


def family_engine(config: str, directory: Path, device: str | None, dtype: str | None):
    """An ImPoster engine on a random SDXL or FLUX.1 pipeline: the real checkpoint's sizes, or ``-tiny``."""
    from imposter import ImPoster
    from imposter.models import resolve_device, resolve_dtype
    from imposter.testing import PIPELINES, random_pipeline

    family, _, tiny = config.partition("-")
    resolved = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)  # built in the run's dtype: no float32 copy of 12 B weights
    try:
        shape = PIPELINES[family].tiny if tiny else PIPELINES[family].real
        pipe = random_pipeline(family, directory, shape, device=resolved)
    finally:
        torch.set_default_dtype(previous)
    return ImPoster.from_pipe(pipe.to(resolved), model=config, ddim=True)


def time_family(args: argparse.Namespace) -> None:
    """Fine-tuning and sampling steps of ImPoster on SDXL or FLUX.1 against the plain pipeline."""
    import numpy as np
    from PIL import Image

    from imposter import FinetuneConfig
    from imposter.config import override
    from imposter.families.flux import call_size
    from imposter.finetune import finetune_lora
    from imposter.methods import get_method
    from imposter.methods.imposter import training_batch
    from imposter.settings import resolve

    tiny = args.config.endswith("-tiny")
    train_steps = args.train_steps or (3 if tiny else 4)
    sample_steps = args.sample_steps or (4 if tiny else 8)
    with tempfile.TemporaryDirectory() as tmp:
        engine = family_engine(args.config, Path(tmp), args.device, args.dtype)
        device, pipe = engine.device, engine.pipe
        side = 16 if tiny else engine.family.native_size(pipe)
        rng = np.random.default_rng(0)
        pixels = max(side, 64)  # inputs have a minimum size; they are fitted to side x side
        source, driving = (
            Image.fromarray(rng.integers(0, 256, (pixels, pixels, 3), dtype=np.uint8)) for _ in range(2)
        )
        captions = ("a dog", "a cat drinking water from a mug")
        pair = engine.prepare(source, captions[0], driving, captions[1], height=side, width=side)
        method = get_method("imposter-guided")
        rows = []

        latents, conditioning = training_batch(engine, pair)
        loss = engine.training_loss()
        per_step = {}
        for checkpointing in (True, False):
            config = override(
                resolve(method, engine.family)[0],
                steps=train_steps,
                gradient_checkpointing=checkpointing,
                target_modules=engine.family.lora_targets,
            )

            def finetune(config=config):
                finetune_lora(
                    engine.denoiser,
                    engine.scheduler,
                    latents,
                    conditioning,
                    config,
                    progress=False,
                    loss=loss,
                    prefix=engine.family.lora_prefix,
                )

            per_step[checkpointing] = seconds = timed(finetune, args.repeats, device) / train_steps
            label = "on (default)" if checkpointing else "off"
            note = (
                f"checkpointing costs {100 * (per_step[True] / seconds - 1):.0f}%"
                if not checkpointing
                else ""
            )
            rows.append((f"fine-tune step, gradient checkpointing {label}", f"{seconds:.3f} s/step", note))

        learned = engine.personalize(pair, method, FinetuneConfig(steps=1), progress=False)
        seeds = list(range(args.seeds))
        ours = override(resolve(method, engine.family)[1], steps=sample_steps, k=min(5, sample_steps))
        unguided = override(ours, amp_scale=0.0, phase_scale=0.0)
        target = engine.conditioning(pair, pair.target_prompt).expand(len(seeds)).to(engine.dtype)
        width, height = pair.size

        def sample(config):
            method.sample(engine, pair, learned, engine.initial_noise(seeds, pair), config, False)

        def plain_pipeline():
            pipe(
                prompt_embeds=target.embeds,
                pooled_prompt_embeds=target.pooled,
                num_inference_steps=sample_steps,
                guidance_scale=ours.guidance_scale,
                output_type="latent",
                **call_size(pipe, height, width),  # a Kontext pipeline would rescale to 1024 x 1024
            )

        with learned.active(engine):
            t_ours = timed(lambda: sample(ours), args.repeats, device) / sample_steps
            t_unguided = timed(lambda: sample(unguided), args.repeats, device) / sample_steps
            t_plain = timed(plain_pipeline, args.repeats, device) / sample_steps
        for name, seconds, note in (
            ("sampling step (ours): stepwise prompts + frequency guidance", t_ours, ""),
            (
                "sampling step, ours without frequency guidance",
                t_unguided,
                f"guidance costs {100 * (t_ours / t_unguided - 1):.0f}%",
            ),
            (
                "sampling step, the pipeline's own call, no callback",
                t_plain,
                f"ours vs plain: x{t_ours / t_plain:.2f}",
            ),
        ):
            rows.append((name, f"{seconds:.3f} s/step", note))

        print(
            f"\n{args.config} (random weights) on {device} ({str(engine.dtype).removeprefix('torch.')}), "
            f"{side}x{side} images, {len(seeds)} seed(s), {sample_steps} denoising steps, "
            f"{train_steps} fine-tuning steps, median of {args.repeats}\n"
        )
        print("| what | time | note |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")


def main() -> None:
    from imposter import FinetuneConfig, ImPoster, SamplingConfig
    from imposter.finetune import finetune_lora
    from imposter.methods import get_method
    from imposter.methods.imposter import training_batch
    from imposter.testing import SD21_BASE, save_random_pipeline
    from imposter.toyworld.pairs import make_pairs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=CONFIGS, default="toy")
    parser.add_argument(
        "--model", default=None, help="time this diffusers folder or hub id instead of --config"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument(
        "--train-steps", type=int, default=None, help="fine-tuning steps per timing (20; SDXL/FLUX.1: 4)"
    )
    parser.add_argument(
        "--sample-steps", type=int, default=None, help="denoising steps per timing (10; SDXL/FLUX.1: 8)"
    )
    parser.add_argument("--seeds", type=int, default=None, help="images per sampling run (4; SDXL/FLUX.1: 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.config not in ("toy", "sd21"):
        args.seeds = args.seeds or 1
        time_family(args)
        return
    args.train_steps, args.sample_steps = args.train_steps or 20, args.sample_steps or 10
    args.seeds = args.seeds or 4

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or (
            "toy" if args.config == "toy" else str(save_random_pipeline("sd", Path(tmp), SD21_BASE))
        )
        engine = ImPoster.from_pretrained(model, args.device, args.dtype)
        device = engine.device
        toy = make_pairs(1, 0)[0]
        pair = engine.prepare(toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt)
        rows = []

        latents, embeds = training_batch(engine, pair)
        ft = FinetuneConfig(steps=args.train_steps)

        def batched_finetune():
            finetune_lora(engine.denoiser, engine.scheduler, latents, embeds, ft, progress=False)

        def one_pair_per_forward():
            for i in range(2):
                finetune_lora(
                    engine.denoiser,
                    engine.scheduler,
                    latents[i : i + 1],
                    embeds[i : i + 1],
                    ft,
                    progress=False,
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

        learned = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=1), progress=False)
        method = get_method("imposter-guided")
        seeds = list(range(args.seeds))
        on = SamplingConfig(steps=args.sample_steps)  # the defaults: guidance on
        off = SamplingConfig(steps=args.sample_steps, amp_scale=0.0, phase_scale=0.0)

        def sample(config, seed_list):
            method.sample(engine, pair, learned, engine.initial_noise(seed_list, pair), config, False)

        def two_call_cfg():
            # the unbatched alternative: the conditional and unconditional halves as two UNet calls
            unet, noise = engine.denoiser, engine.initial_noise(seeds, pair)
            forward = unet.forward

            def two_calls(sample, t, encoder_hidden_states, **kwargs):
                halves = zip(sample.chunk(2), encoder_hidden_states.chunk(2), strict=True)
                return (torch.cat([forward(s, t, encoder_hidden_states=e, **kwargs)[0] for s, e in halves]),)

            unet.forward = two_calls
            try:
                method.sample(engine, pair, learned, noise, off, False)
            finally:
                del unet.forward

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
