"""Peak memory of one fine-tuning step and one sampling step, with and without each memory feature.

    python benchmarks/memory.py --config sd21 --device cuda   # measured on a GPU (max_memory_allocated)
    nice -n 19 python benchmarks/memory.py --config sd21      # measured on the CPU: peak RSS stands in
    python benchmarks/memory.py --config flux --computed-only # FLUX.1-dev (12 B): computed from counts
    python benchmarks/memory.py --config sd-tiny              # smoke test on the tiny test shapes

Random weights at the real checkpoints' sizes (imposter.testing SD21_BASE, SDXL_BASE,
FLUX_DEV): memory does not depend on the weights. Rows: the LoRA fine-tune step (both pairs in one
batch, as ImPoster trains) in float32 and bf16, each with and without gradient checkpointing; the authors'
released fine-tune (full UNet + LoRA, float32 Adam; SD and SDXL); one sampling step (classifier-free guidance
batch for SD/SDXL) in float32, bf16, and bf16 with model CPU offload (CUDA only: on a CPU nothing is offloaded).

**Measured**: each row in a fresh subprocess; on CUDA ``torch.cuda.max_memory_allocated``; on a CPU the same
tensors live in RAM, so the process's peak resident set (minus its size after importing torch and diffusers)
stands in for GPU memory. The images' VAE encoding is replaced by random latents: it is not part of a step.

**Computed** from counts, for every config (and the only numbers for rows that do not fit): the resident models'
parameters (text encoders with their real vocabularies) times bytes per parameter, the trainable state (LoRA or
the authors' whole UNet: weight, gradient and two Adam moments in float32), and the activations the backward
pass keeps, summed by running the denoiser on PyTorch's "meta" device (shapes only, no memory) with attention
counted as a memory-efficient kernel keeps it (q, k, v, output: no N x N matrix, as SDPA's flash/efficient
kernels on a GPU). With gradient checkpointing: the block inputs kept plus the largest block's recomputation.
A sampling step is computed as the weights plus the largest block's activations (no gradients kept). Allocator
overhead, CUDA context (~0.5 GB) and fragmentation are not in the computed numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

GB = 1e9
REAL_VOCAB = {"CLIPTextModel": 49408, "CLIPTextModelWithProjection": 49408, "T5EncoderModel": 32128}


@dataclass(frozen=True)
class Row:
    """One measurement: a fine-tuning or sampling step with some memory features."""

    phase: str  # "fine-tune" or "sample"
    label: str
    dtype: torch.dtype = torch.float32
    checkpointing: bool = False
    authors: bool = False  # the released code's full-UNet fp32 Adam fine-tune
    offload: bool = False  # model CPU offload (CUDA only)


ROWS = (
    Row("fine-tune", "LoRA, float32"),
    Row("fine-tune", "LoRA, float32, gradient checkpointing", checkpointing=True),
    Row("fine-tune", "LoRA, bf16 weights", torch.bfloat16),
    Row("fine-tune", "LoRA, bf16 weights, gradient checkpointing", torch.bfloat16, checkpointing=True),
    Row("fine-tune", "authors: full UNet + LoRA, float32 Adam", authors=True),
    Row("sample", "float32"),
    Row("sample", "bf16 weights", torch.bfloat16),
    Row("sample", "bf16 weights, model CPU offload", torch.bfloat16, offload=True),
)


def shape_of(config: str):
    """(family, shape) of a config name."""
    from imposter.testing import PIPELINES

    family = {"sd21": "sd"}.get(config, config.removesuffix("-tiny"))  # sd21: SD's real shape
    recipe = PIPELINES[family]
    return family, recipe.tiny if config.endswith("-tiny") else recipe.real


def applies(row: Row, family: str, device: str) -> bool:
    """Whether ``row`` means something for ``family`` on ``device``."""
    if row.authors and family == "flux":
        return False  # the released code trains SD's UNet; a FLUX.1 transformer has none
    return not (row.offload and device == "cpu")


def build(config: str, directory: Path, device: str | torch.device, dtype: torch.dtype):
    """The random pipeline of ``config``, built in ``dtype`` (no float32 copy), on ``device`` ("meta": no memory)."""
    from imposter.testing import random_pipeline

    family, shape = shape_of(config)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return random_pipeline(family, directory, shape, device=device)
    finally:
        torch.set_default_dtype(previous)


def image_side(config: str, engine) -> int:
    return 16 if config.endswith("-tiny") else engine.family.native_size(engine.pipe)


# --- measured: one row in this (fresh) process ---------------------------------------------------


def rss_bytes() -> int:
    """This process's peak resident set so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(config: str, row: Row, device: str) -> dict:
    """Peak memory of ``row``'s step on ``config``, in bytes, above this process's size after imports."""
    import numpy as np
    from PIL import Image

    from imposter import FinetuneConfig, ImPoster
    from imposter.config import override
    from imposter.finetune import finetune_full_authors, finetune_lora
    from imposter.methods import get_method
    from imposter.methods.imposter import training_batch
    from imposter.settings import resolve

    baseline = rss_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        pipe = build(config, Path(tmp), "cpu" if row.offload else device, row.dtype)
        engine = ImPoster.from_pipe(pipe, model=config, ddim=True)
        if row.offload:
            pipe.enable_model_cpu_offload(device=device)
        side = image_side(config, engine)
        channels, factor = engine.family.latent_channels(pipe), engine.family.vae_scale_factor(pipe)
        # the images' VAE encoding is not part of a step: random latents of the right shape instead
        engine.family.encode_images = lambda pipe, images: torch.randn(
            len(images), channels, side // factor, side // factor, device=engine.device
        )
        image = Image.fromarray(np.zeros((max(side, 64), max(side, 64), 3), dtype=np.uint8))
        pair = engine.prepare(
            image, "a dog", image, "a cat drinking water from a mug", height=side, width=side
        )
        method = get_method("imposter-guided")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if row.phase == "fine-tune":
            latents, conditioning = training_batch(engine, pair)
            settings = override(
                resolve(method, engine.family)[0],
                steps=1,
                gradient_checkpointing=row.checkpointing,
                target_modules=engine.family.lora_targets,
            )
            loss = engine.training_loss()
            if row.authors:
                finetune_full_authors(
                    engine.denoiser, engine.scheduler, latents, conditioning, settings, False, loss
                )
            else:
                finetune_lora(
                    engine.denoiser, engine.scheduler, latents, conditioning, settings, False, loss,
                    engine.family.lora_prefix,
                )  # fmt: skip
        else:
            learned = engine.personalize(pair, method, FinetuneConfig(steps=0), progress=False)
            sampling = override(resolve(method, engine.family)[1], steps=1, k=1)
            with learned.active(engine):
                method.sample(engine, pair, learned, engine.initial_noise([0], pair), sampling, False)
    if device.startswith("cuda"):
        return {"peak": torch.cuda.max_memory_allocated(), "baseline": 0}
    return {"peak": rss_bytes() - baseline, "baseline": baseline}


def measure_in_subprocess(config: str, index: int, device: str, max_gb: float | None) -> dict | str:
    """``measure`` in a fresh Python process (a process's peak RSS only grows); what went wrong if it failed.

    ``max_gb``: the child's address-space limit, so that a row too big for this machine fails alone
    instead of pushing other processes out of memory.
    """
    command = [sys.executable, __file__, "--config", config, "--device", device, "--row", str(index)]

    def limit():
        if max_gb:
            size = int(max_gb * GB)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit)
    if done.returncode != 0:
        text = done.stderr or done.stdout
        if "can't allocate memory" in text or "MemoryError" in text or "out of memory" in text.lower():
            return f"does not fit in {max_gb:g} GB" if max_gb else "out of memory"
        lines = text.strip().splitlines()
        return lines[-1] if lines else f"exit {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- computed from counts ---------------------------------------------------------------------------


def parameters(module: torch.nn.Module) -> int:
    """Parameters of ``module``, a text encoder counted with its real vocabulary (ours has a small one)."""
    count = sum(p.numel() for p in module.parameters())
    if type(module).__name__ in REAL_VOCAB:
        vocab, width = module.get_input_embeddings().weight.shape
        count += (REAL_VOCAB[type(module).__name__] - vocab) * width
    return count


def lora_parameters(denoiser: torch.nn.Module, targets, rank: int = 4) -> int:
    """Parameters of a rank-``rank`` LoRA on the Linear layers whose names end with one of ``targets``."""
    return sum(
        rank * (module.in_features + module.out_features)
        for name, module in denoiser.named_modules()
        if isinstance(module, torch.nn.Linear) and any(name.endswith(target) for target in targets)
    )


class _KeepForBackward(torch.autograd.Function):
    """Identity on ``out`` that keeps q, k, v and ``out`` for backward, as a memory-efficient attention kernel does."""

    @staticmethod
    def forward(ctx, query, key, value, out):
        ctx.save_for_backward(query, key, value, out)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad):  # never run: the meta pass has no backward
        raise NotImplementedError


def flash_like_sdpa():
    """(the original, a replacement) scaled_dot_product_attention keeping what a memory-efficient kernel keeps."""
    original = torch.nn.functional.scaled_dot_product_attention

    def attention(query, key, value, *args, **kwargs):
        with torch.no_grad():  # the math kernel a meta tensor gets would keep the N x N weights
            out = original(query, key, value, *args, **kwargs)
        return _KeepForBackward.apply(query, key, value, out) if torch.is_grad_enabled() else out

    return original, attention


def innermost_blocks(denoiser: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks gradient checkpointing recomputes one at a time: resnets, transformer blocks (none nested)."""
    blocks = [m for m in denoiser.modules() if "Block" in type(m).__name__]
    return [b for b in blocks if not any(m is not b and "Block" in type(m).__name__ for m in b.modules())]


def activation_bytes(config: str, engine, batch: int, dtype: torch.dtype) -> tuple[int, int, int]:
    """(kept without checkpointing, kept with it, largest block's) activation bytes of a training forward."""
    denoiser = engine.denoiser
    side = image_side(config, engine)
    family = engine.family
    latent = side // family.vae_scale_factor(engine.pipe)
    channels = family.latent_channels(engine.pipe)
    conditioning = family.encode(engine.pipe, "a dog").expand(batch).to(dtype)
    latents = torch.zeros(batch, channels, latent, latent, device="meta")
    loss = family.training_loss(engine.pipe)
    saved = [0]
    per_block: list[int] = []

    def keep(tensor):
        saved[0] += tensor.numel() * tensor.element_size()
        return tensor

    blocks = innermost_blocks(denoiser)
    starts: dict[int, int] = {}
    handles = [b.register_forward_pre_hook(lambda m, a: starts.__setitem__(id(m), saved[0])) for b in blocks]
    handles += [
        b.register_forward_hook(lambda m, a, o: per_block.append(saved[0] - starts[id(m)])) for b in blocks
    ]
    original, attention = flash_like_sdpa()
    torch.nn.functional.scaled_dot_product_attention = attention
    results = []
    try:
        denoiser.requires_grad_(True)  # as if trainable: every layer keeps its input for backward
        for checkpointing in (False, True):
            saved[0] = 0
            if checkpointing:
                denoiser.enable_gradient_checkpointing()
            denoiser.train()
            timesteps = torch.full((batch,), 500, device="meta", dtype=torch.long)
            noise = torch.zeros_like(latents)
            with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
                loss(denoiser, latents, conditioning, noise, timesteps)
            results.append(saved[0])
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
        for handle in handles:
            handle.remove()
    largest = max(per_block, default=0)
    return results[0], results[1] + largest, largest


def computed(config: str, device: str) -> dict[str, float]:
    """Every applicable row's memory in GB, from parameter and activation counts (see the module docstring)."""
    from imposter import ImPoster

    family, _ = shape_of(config)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in (torch.float32, torch.bfloat16):
            pipe = build(config, Path(tmp), "meta", dtype)
            engine = ImPoster.__new__(ImPoster)
            ImPoster.__init__(engine, pipe, model=config)
            bytes_per = torch.tensor([], dtype=dtype).element_size()
            models = engine.family.modules(pipe)
            counts = [parameters(m) for m in models]
            weights, denoiser_weights = sum(counts) * bytes_per, counts[0] * bytes_per
            targets = engine.family.lora_targets
            lora_state = (
                lora_parameters(engine.denoiser, targets) * 16
            )  # fp32 weight, gradient, two AdamW moments
            plain, checkpointed, block = activation_bytes(config, engine, 2, dtype)
            sample_block = block if family != "flux" else block // 2  # CFG batch of 2; FLUX.1-dev: 1 row
            for row in ROWS:
                if row.dtype != dtype or not applies(row, family, device):
                    continue
                if row.phase == "fine-tune" and row.authors:
                    total = (
                        weights + counts[0] * 12 + plain
                    )  # fp32: + gradient and two Adam moments per weight
                elif row.phase == "fine-tune":
                    total = weights + lora_state + (checkpointed if row.checkpointing else plain)
                elif row.offload:
                    total = denoiser_weights + sample_block  # only the denoiser on the GPU while it runs
                else:
                    total = weights + sample_block
                rows[row.label if row.phase == "fine-tune" else f"sample: {row.label}"] = total / GB
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="sd-tiny", choices=["sd-tiny", "sdxl-tiny", "sd21", "sdxl", "flux"]
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--computed-only", action="store_true", help="no measurement: counts only")
    parser.add_argument(
        "--max-gb", type=float, default=None, help="address-space limit of each measuring process (CPU runs)"
    )
    parser.add_argument("--row", type=int, default=None, help=argparse.SUPPRESS)  # one measurement (child)
    args = parser.parse_args()
    if args.row is not None:
        print(json.dumps(measure(args.config, ROWS[args.row], args.device)))
        return
    family, _ = shape_of(args.config)
    estimates = computed(args.config, args.device)
    where = (
        "GPU max_memory_allocated" if args.device.startswith("cuda") else "CPU peak RSS above the baseline"
    )
    print(f"\n{args.config}, random weights; measured: {where}, one fresh process per row\n")
    print("| step | memory features | measured GB | computed GB |\n|---|---|---|---|")
    for index, row in enumerate(ROWS):
        if not applies(row, family, args.device):
            continue
        key = row.label if row.phase == "fine-tune" else f"sample: {row.label}"
        measured = (
            "not run"
            if args.computed_only
            else measure_in_subprocess(args.config, index, args.device, args.max_gb)
        )
        if isinstance(measured, dict):
            measured = f"{measured['peak'] / GB:.3g}"
        print(f"| {row.phase} | {row.label} | {measured} | {estimates[key]:.3g} |")
    if not args.device.startswith("cuda"):
        print(
            "\nOn a CPU the tensors a GPU would hold live in RAM: peak RSS stands in for GPU memory "
            "(model CPU offload does not apply)."
        )


if __name__ == "__main__":
    main()
