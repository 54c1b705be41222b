"""ImPoster at real shapes with random weights: one command for a lent GPU, one markdown table, one JSON file.

    python benchmarks/gpu_report.py --out runs/gpu-report                       # one 80-140 GB card, bf16, < 8 min
    python benchmarks/gpu_report.py --device cpu --tiny --out runs/gpu-tiny     # the same code on tiny shapes (CI)
    python benchmarks/gpu_report.py --device cpu --cpu-ratios --out runs/cpu    # real shapes on a CPU: ratios only

Compute and memory do not depend on the weights, so pipelines of the real checkpoints' sizes with random
weights (``imposter.testing``: SD-2.1-base, SDXL-base-1.0, FLUX.1-dev, each citing its configs) stand in
for the checkpoints. Per model:

- **SD-2.1-base at 512** (the paper's model): seconds per fine-tuning step (ours: LoRA, both pairs in one
  batch) timed over a window and extrapolated to the 500 steps of a run; the same for the authors' release
  (every UNet weight + LoRA, float32 Adam, two updates per iteration: ``imposter-authors``); sampling 5 seeds
  x 50 DDIM steps with stepwise prompts and frequency guidance (ours) and with K = 6 and no guidance (the
  release's, which computes no effective guidance); seconds per pair end to end (encoding the pair, the
  fine-tune, sampling, decoding) and the ratio of the release's to ours.
- **SDXL at 1024, FLUX.1-dev at 1024**: seconds per fine-tuning step (the family's LoRA targets and
  checkpointing) and per sampling step with and without frequency guidance.
- **Peak memory** of each phase: ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU the process's peak
  resident set only grows, so ``--cpu-ratios`` takes the fine-tuning rows' peaks from
  ``benchmarks/memory.py`` (each step in a fresh process) instead.

``--cpu-ratios`` keeps what a CPU can afford at real shapes: a couple of steps of each kind, reported as
ratios measured in one run (the frequency guidance's cost against one denoiser step at SD 2.1's 4x64x64 and
SDXL's 4x128x128 latents; one fine-tuning step, ours against the release's at SD 2.1's shape).
Nothing is asserted: the numbers are for the README's speed section.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from speed import family_engine  # noqa: E402  (a sibling script)

RUN_STEPS = 500  # paper Sec. 4: 500 fine-tuning iterations per pair
SEEDS = 5  # images per pair, as the end-to-end figure counts them
SAMPLE_STEPS = 50  # paper Sec. 4: 50 DDIM steps
CAPTIONS = ("a dog", "a cat drinking water from a mug")


@dataclass
class Plan:
    """How much of each kind of work one run times (the defaults: a full GPU report)."""

    configs: tuple[str, ...] = ("sd21", "sdxl", "flux")
    window: int = 10  # fine-tuning steps timed, after one warm-up step
    seeds: int = SEEDS
    sample_steps: int = SAMPLE_STEPS  # SD-2.1: the whole 50-step run; SDXL and FLUX.1: see step_window
    step_window: int = 8  # sampling steps timed for SDXL and FLUX.1 (per-step figures)
    authors: bool = True  # time the release's full-UNet fine-tune (SD only)
    family_finetune: bool = True  # time SDXL's and FLUX.1's fine-tuning steps (a CPU cannot afford them)


def plan_for(args: argparse.Namespace) -> Plan:
    if args.tiny:
        return Plan(("sd-tiny", "sdxl-tiny", "flux-tiny"), window=2, seeds=2, sample_steps=3, step_window=2)
    if args.cpu_ratios:
        return Plan(("sd21", "sdxl"), window=1, seeds=1, sample_steps=2, step_window=2, family_finetune=False)
    return Plan()


class Clock:
    """Seconds and peak device memory of a block of work (CUDA: max_memory_allocated since its start)."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn) -> tuple[float, float | None]:
        """Run ``fn()``; return (seconds, peak GB or None on a CPU)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.sync()
        start = time.perf_counter()
        fn()
        self.sync()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(self.device) / 1e9 if self.device.type == "cuda" else None
        return seconds, peak


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # model, what, value, note
    numbers: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def add(self, model: str, what: str, value: str, note: str = "") -> None:
        self.rows.append((model, what, value, note))

    def markdown(self) -> str:
        lines = ["| model | what | value | note |", "|---|---|---:|---|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in self.rows])


def build(config: str, directory: Path, device: str, dtype: str | None):
    """An engine on a random pipeline of ``config``'s shape ("sd21", "sdxl", "flux"; "-tiny": test shapes)."""
    return family_engine("sd" if config == "sd21" else config, directory, device, dtype)


def random_pair(clock: Clock, engine, tiny: bool):
    """A pair of random images prepared at the model's native size (16 px on the tiny shapes): the pair,
    its side, and the seconds its preparation took (VAE encoding and captions)."""
    import numpy as np
    from PIL import Image

    side = 16 if tiny else engine.family.native_size(engine.pipe)
    rng = np.random.default_rng(0)
    pixels = max(side, 64)
    images = [Image.fromarray(rng.integers(0, 256, (pixels, pixels, 3), dtype=np.uint8)) for _ in range(2)]

    def prepare():
        prepared.append(
            engine.prepare(images[0], CAPTIONS[0], images[1], CAPTIONS[1], height=side, width=side)
        )

    prepared: list = []
    prepare()  # warm-up
    seconds, _ = clock(prepare)
    return prepared[-1], side, seconds


def time_finetune(clock: Clock, engine, pair, plan: Plan, authors: bool) -> tuple[float, float | None]:
    """Seconds per fine-tuning step (ours, or the release's iteration of two updates), and peak GB."""
    from imposter.config import override
    from imposter.finetune import finetune_full_authors, finetune_lora
    from imposter.methods import get_method
    from imposter.methods.imposter import training_batch
    from imposter.settings import resolve

    latents, conditioning = training_batch(engine, pair)
    method = get_method("imposter-authors" if authors else "imposter-guided")
    settings = resolve(method, engine.family)[0]
    settings = override(
        settings,
        target_modules=engine.family.lora_targets,
        gradient_checkpointing=bool(engine.family.gradient_checkpointing),
    )
    loss = engine.training_loss()

    def run(steps: int) -> None:
        config = override(settings, steps=steps)
        if authors:
            finetune_full_authors(
                engine.denoiser, engine.scheduler, latents, conditioning, config, False, loss
            )
        else:
            finetune_lora(
                engine.denoiser, engine.scheduler, latents, conditioning, config, False, loss,
                engine.family.lora_prefix,
            )  # fmt: skip

    run(1)  # warm-up: kernels, allocator, LoRA layers
    seconds, peak = clock(lambda: run(plan.window))
    return seconds / plan.window, peak


def time_sampling(
    clock: Clock, engine, pair, seeds: int, steps: int, method_name: str, guided: bool
) -> tuple[float, float | None]:
    """Seconds (and peak GB) of one sampling run of ``seeds`` images x ``steps`` steps (the latents; decoding
    is timed apart, by ``time_decode``), after a warm-up run."""
    from imposter import FinetuneConfig
    from imposter.config import override
    from imposter.methods import get_method
    from imposter.settings import resolve

    method = get_method(method_name)
    # ours samples through its (untrained) LoRA; the release's UNet has its LoRA merged: nothing to add
    if method_name == "imposter-authors":
        learned = engine.personalize(pair, "text-only", progress=False)
    else:
        learned = engine.personalize(pair, method, FinetuneConfig(steps=0), progress=False)
    sampling = resolve(method, engine.family)[1]
    sampling = override(sampling, steps=steps, k=min(sampling.k, steps))
    if not guided:
        sampling = override(sampling, amp_scale=0.0, phase_scale=0.0)
    noise = engine.initial_noise(list(range(seeds)), pair)

    def run() -> None:
        method.sample(engine, pair, learned, noise, sampling, False)

    with learned.active(engine):
        run()  # warm-up
        return clock(run)


def time_decode(clock: Clock, engine, pair, seeds: int) -> float:
    """Seconds to decode ``seeds`` latents into images (the VAE), after a warm-up."""
    latents = pair.source_latents.expand(seeds, -1, -1, -1).to(engine.device)
    engine.decode(latents)
    return clock(lambda: engine.decode(latents))[0]


def report_sd(report: Report, clock: Clock, engine, pair, encode: float, plan: Plan, label: str) -> None:
    """SD-2.1: fine-tune windows (ours, the release's), whole sampling runs, seconds per pair, the ratio.
    ``encode``: the seconds the pair's preparation took."""
    ours_step, ours_peak = time_finetune(clock, engine, pair, plan, authors=False)
    guided, guided_peak = time_sampling(
        clock, engine, pair, plan.seeds, plan.sample_steps, "imposter-guided", True
    )
    plain, _ = time_sampling(clock, engine, pair, plan.seeds, plan.sample_steps, "imposter-guided", False)
    decode = time_decode(clock, engine, pair, plan.seeds)
    numbers = {
        "encode_pair_s": encode,
        "finetune_step_s": ours_step,
        "finetune_peak_gb": ours_peak,
        "sampling_run_s": guided,
        "sampling_run_unguided_s": plain,
        "sampling_peak_gb": guided_peak,
        "guidance_cost": guided / plain - 1,
        "decode_s": decode,
    }
    per_pair = encode + RUN_STEPS * ours_step + guided + decode
    numbers["pair_s"] = per_pair
    run = f"{plan.seeds} seeds x {plan.sample_steps} steps"
    report.add(label, "fine-tuning step (LoRA, both pairs per batch)", f"{ours_step:.3f} s", peak(ours_peak))
    report.add(label, f"sampling, {run}, guided (ours)", f"{guided:.2f} s", peak(guided_peak))
    report.add(
        label, f"sampling, {run}, no frequency guidance", f"{plain:.2f} s",
        f"guidance costs {100 * numbers['guidance_cost']:.1f}%",
    )  # fmt: skip
    report.add(
        label,
        f"one pair end to end: encode + {RUN_STEPS} steps (extrapolated) + sampling + decode",
        f"{per_pair:.1f} s",
        f"decoding {plan.seeds} images: {decode:.2f} s",
    )
    if plan.authors:
        authors_step, authors_peak = time_finetune(clock, engine, pair, plan, authors=True)
        release, _ = time_sampling(
            clock, engine, pair, plan.seeds, plan.sample_steps, "imposter-authors", False
        )
        authors_pair = encode + RUN_STEPS * authors_step + release + decode
        numbers |= {
            "authors_finetune_step_s": authors_step,
            "authors_finetune_peak_gb": authors_peak,
            "authors_sampling_run_s": release,
            "authors_pair_s": authors_pair,
            "speedup_finetune_step": authors_step / ours_step,
            "speedup_pair": authors_pair / per_pair,
        }
        report.add(
            label, "release's fine-tuning iteration (full UNet, fp32 Adam, 2 updates)", f"{authors_step:.3f} s",
            f"x{authors_step / ours_step:.2f} ours; {peak(authors_peak)}".rstrip("; "),
        )  # fmt: skip
        report.add(
            label, "release's pair end to end (K = 6, no guidance)", f"{authors_pair:.1f} s",
            f"ours is x{authors_pair / per_pair:.2f} faster",
        )  # fmt: skip
    report.numbers[label] = numbers


def report_family(report: Report, clock: Clock, engine, pair, plan: Plan, label: str) -> None:
    """SDXL / FLUX.1: seconds per fine-tuning step and per sampling step, with and without guidance."""
    step, step_peak = (
        time_finetune(clock, engine, pair, plan, authors=False) if plan.family_finetune else (None, None)
    )
    guided, guided_peak = time_sampling(clock, engine, pair, 1, plan.step_window, "imposter-guided", True)
    plain, _ = time_sampling(clock, engine, pair, 1, plan.step_window, "imposter-guided", False)
    guided, plain = guided / plan.step_window, plain / plan.step_window
    report.numbers[label] = {
        "finetune_step_s": step,
        "finetune_peak_gb": step_peak,
        "sampling_step_s": guided,
        "sampling_step_unguided_s": plain,
        "sampling_peak_gb": guided_peak,
        "guidance_cost": guided / plain - 1,
    }
    checkpointing = "on" if engine.family.gradient_checkpointing else "off"
    if step is not None:
        report.add(
            label, f"fine-tuning step (LoRA, checkpointing {checkpointing})", f"{step:.3f} s", peak(step_peak)
        )
    report.add(label, "sampling step, 1 seed, guided (ours)", f"{guided:.3f} s", peak(guided_peak))
    report.add(
        label, "sampling step, no frequency guidance", f"{plain:.3f} s",
        f"guidance costs {100 * (guided / plain - 1):.1f}%",
    )  # fmt: skip


def peak(gb: float | None) -> str:
    return f"peak {gb:.1f} GB" if gb is not None else ""


def cpu_peaks(report: Report) -> None:
    """Peak RSS of one fine-tuning step at SD-2.1's shape, ours and the release's (benchmarks/memory.py rows,
    each in a fresh process, float32)."""
    from memory import ROWS, measure_in_subprocess

    for label in ("LoRA, float32", "authors: full UNet + LoRA, float32 Adam"):
        index = next(i for i, row in enumerate(ROWS) if row.label == label)
        measured = measure_in_subprocess("sd21", index, "cpu", None)
        value = f"{measured['peak'] / 1e9:.1f} GB" if isinstance(measured, dict) else measured
        report.add(
            "SD-2.1-base 512", f"peak RSS of one fine-tuning step: {label}", value, "memory.py, fresh process"
        )
        report.numbers.setdefault("peak_rss_gb", {})[label] = (
            measured["peak"] / 1e9 if isinstance(measured, dict) else None
        )


LABELS = {
    "sd21": "SD-2.1-base 512", "sdxl": "SDXL 1024", "flux": "FLUX.1-dev 1024",
    "sd-tiny": "SD tiny", "sdxl-tiny": "SDXL tiny", "flux-tiny": "FLUX.1 tiny",
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for report.md and report.json")
    parser.add_argument("--device", default=None, help="default: cuda when there is one, else cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--tiny", action="store_true", help="tiny test shapes (CI): the same code, seconds")
    parser.add_argument(
        "--cpu-ratios", action="store_true", help="real shapes, a couple of steps of each kind"
    )
    parser.add_argument("--only", nargs="+", choices=sorted(LABELS), help="these configs only")
    args = parser.parse_args()

    from imposter.models import resolve_device

    plan = plan_for(args)
    if args.only:
        plan.configs = tuple(args.only)
    device = resolve_device(args.device)
    clock = Clock(device)
    report = Report()
    started = time.perf_counter()
    if args.cpu_ratios:  # first, while this process is small: each row's child needs most of the memory
        cpu_peaks(report)
    for config in plan.configs:
        label = LABELS[config]
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            engine = build(config, Path(tmp), str(device), args.dtype)
            built = time.perf_counter() - start
            pair, side, encode = random_pair(clock, engine, args.tiny)
            print(f"{label}: built in {built:.0f} s ({side}x{side})", flush=True)
            if config in ("sd21", "sd-tiny"):
                report_sd(report, clock, engine, pair, encode, plan, label)
            else:
                report_family(report, clock, engine, pair, plan, label)
            report.numbers[label]["dtype"] = str(engine.dtype).removeprefix("torch.")
            del engine, pair
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        save(report, plan, args, device, time.perf_counter() - started)  # a killed run keeps what it measured
    print("\n" + save(report, plan, args, device, time.perf_counter() - started))


def save(report: Report, plan: Plan, args: argparse.Namespace, device: torch.device, seconds: float) -> str:
    """Write OUT/report.md and OUT/report.json (each atomically) with what is measured so far; the text."""
    from imposter.fileio import write_json, write_text

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    header = (
        f"ImPoster at {'tiny' if args.tiny else 'real'} shapes, random weights, on {name} "
        f"({torch.get_num_threads()} CPU threads, torch {torch.__version__}), "
        f"{datetime.now(timezone.utc):%Y-%m-%d}; run so far {seconds:.0f} s; "
        f"fine-tuning steps timed over {plan.window} after a warm-up"
    )
    text = f"{header}\n\n{report.markdown()}\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.md", text)
    summary = {"header": header, "plan": plan.__dict__, "device": str(device), "numbers": report.numbers}
    write_json(out / "report.json", summary)
    return text


if __name__ == "__main__":
    main()
