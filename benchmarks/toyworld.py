"""Ground-truth benchmark on the toy world: which method (and which settings) puts the source subject in
the driving pose?

    python benchmarks/toyworld.py table --pairs 24 --seeds 0 1 --out runs/toy-table   # every method
    python benchmarks/toyworld.py sweep --pairs 12 --seeds 0 1 --out runs/toy-sweep   # ImPoster settings

``table`` renders held-out pairs of the ``table`` split (``imposter toy pairs``) and runs ``imposter
bench`` on them with the bundled model: ImPoster, Baseline++, the paper's four ablations, the authors'
release, the peers and the reference rows (copies, phase swap, guidance alone, text alone), scored
against ground truth (pose IoU, the classifier's subject and leakage, colour identity, PSNR) and by the
paper's phase score; then it adds the ceiling: the ground truth itself through the model's VAE.

``sweep`` fine-tunes once per pair (the ImPoster LoRA, or with ``--method imposter-subject`` the LoRA on
the source alone) and samples with every combination of the
settings given (guidance scales, phase distance, guidance space, normalization, K). It draws from the
``tune`` split, whose (subject, action) combinations never appear in a table, so settings are not
chosen on the pairs they are reported on. Results are printed as markdown tables with 95% intervals
over pairs; nothing is asserted. Both resume where they stopped (the sweep keeps one JSON line per
pair and setting).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from imposter.config import LORA_LAYERS
from imposter.flags import phase_cutoff, step_or_off, strength_or_off

METHODS = (
    "copy-source", "copy-driving", "phase-swap", "guidance-only", "text-only",
    "imposter", "imposter-guided", "baseline++", "imposter-k0", "imposter-no-guidance", "imposter-no-phase", "imposter-no-amp",
    "imposter-authors", "hiper", "adi", "adi+lora",
)  # fmt: skip
GT_KEYS = ("pose_iou", "subject", "instance", "leakage", "identity", "psnr", "phase")


def vae_ceiling(csv: Path, model: str) -> tuple[str, dict[str, float]]:
    """The markdown row of the ground truth through the model's VAE (the best any method can score), and
    its means per metric."""
    import torch

    from imposter import ImPoster
    from imposter.bench.pairs import read_pairs
    from imposter.bench.stats import mean_interval
    from imposter.images import load_image
    from imposter.metrics.base import EvalItem
    from imposter.metrics.phase import PhaseScore
    from imposter.toyworld.metric import ToyGroundTruth

    engine = ImPoster.from_pretrained(model, device="cpu")
    items = []
    for pair in read_pairs(csv):
        target = load_image(pair.target_image)
        with torch.no_grad():
            (through_vae,) = engine.decode(engine.encode_images([target]))
        items.append(
            EvalItem(through_vae, load_image(pair.source_image), load_image(pair.driving_image), "", target)
        )
    scores = [
        dict(a, **b) for a, b in zip(ToyGroundTruth().score(items), PhaseScore().score(items), strict=True)
    ]
    cells, means = [], {}
    for key in GT_KEYS:
        mean, half = mean_interval([s[key] for s in scores])
        means[key] = mean
        cells.append(f"{mean:.3f} ± {half:.3f}" if half is not None else f"{mean:.3f}")
    return "| vae-ceiling | " + " | ".join(cells) + " |", means


def pareto_picture(bench: Path, ceiling: dict[str, float], out: Path) -> None:
    """Pose IoU against subject and against instance, a point per method with its interval, the floors
    (reference rows) and the ceiling marked: ``out``."""
    from imposter.bench.report import summarize, tradeoff_figure
    from imposter.bench.store import read_results
    from imposter.fileio import save_image

    summary = summarize(read_results(bench))
    figure = tradeoff_figure(summary, ceiling, panels=(("subject", "pose_iou"), ("instance", "pose_iou")))
    if figure is not None:
        save_image(figure, out)
        print(f"the Pareto picture: {out}")


def table(args: argparse.Namespace) -> None:
    """Every method on the same held-out pairs, through the bench runner, then the VAE ceiling."""
    from imposter.cli import main
    from imposter.toyworld.pairs import write_pairs

    out = Path(args.out)
    csv = write_pairs(args.pairs, args.pair_seed, out / "pairs", args.split)
    argv = ["bench", "--pairs", str(csv), "--model", args.model, "--methods", *args.methods, "--seeds"]
    argv += [str(s) for s in args.seeds] + [
        "--metrics",
        "toy",
        "phase",
        "--out",
        str(out / "bench"),
        *args.extra,
    ]
    code = main(argv)
    if code == 0:
        print((out / "bench" / "report.md").read_text())
        ceiling, means = vae_ceiling(csv, args.model)
        (out / "vae_ceiling.md").write_text(f"| row | {' | '.join(GT_KEYS)} |\n{ceiling}\n")
        print(f"\nceiling (the ground truth through the VAE; {', '.join(GT_KEYS)}):\n{ceiling}")
        pareto_picture(out / "bench", means, out / "pareto.png")
    sys.exit(code)


def sweep_settings(args: argparse.Namespace) -> list[dict]:
    """Every combination of the swept values, as SamplingConfig overrides."""
    grid = {
        "k": args.k,
        "amp_scale": args.amp_scale,
        "phase_scale": args.phase_scale,
        "phase_distance": args.phase_distance,
        "guidance_space": args.guidance_space,
        "guidance_normalization": args.guidance_normalization,
        "phase_cutoff": args.phase_cutoff,
        "guidance_until": args.guidance_until,
        "source_attention_from": args.source_attention_from,
        "driving_strength": args.driving_strength,
    }
    if (
        args.driving_inversion
    ):  # only when asked: earlier sweeps' settings (and their resumption) stay as they were
        grid["driving_inversion"] = [True]
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def sweep(args: argparse.Namespace) -> None:
    """One LoRA per pair, many sampling settings, scored against ground truth."""
    import torch
    from tqdm.auto import tqdm

    from imposter import FinetuneConfig, ImPoster, SamplingConfig
    from imposter.bench.stats import mean_interval
    from imposter.fileio import atomic_directory, write_text
    from imposter.metrics.base import EvalItem
    from imposter.metrics.phase import PhaseScore
    from imposter.toyworld.metric import ToyGroundTruth
    from imposter.toyworld.pairs import make_pairs

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "sweep.jsonl"
    done = {}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            row = json.loads(line)
            done[(row["pair_id"], json.dumps(row["settings"], sort_keys=True))] = row
    engine = ImPoster.from_pretrained(args.model, device=args.device)
    metrics = [ToyGroundTruth(), PhaseScore()]
    finetune = FinetuneConfig(
        steps=args.train_steps, learning_rate=args.lr, rank=args.rank, lora_layers=args.lora_layers
    )
    settings = sweep_settings(args)
    rows = list(done.values())
    learner = "" if args.method == "imposter-guided" else f"{args.method}-"
    shape = "" if args.lora_layers == "attention" and args.rank == 4 else f"-r{args.rank}-{args.lora_layers}"
    for toy in tqdm(make_pairs(args.pairs, args.pair_seed, args.split), desc="pairs"):
        todo = [s for s in settings if (toy.pair_id, json.dumps(s, sort_keys=True)) not in done]
        if not todo:
            continue
        pair = engine.prepare(toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt)
        cached = (
            out / "adapters" / f"{learner}{toy.pair_id}-{finetune.steps}-{finetune.learning_rate:g}{shape}"
        )
        if cached.is_dir():  # staged sweeps share the fine-tune of each pair
            learned = engine.load_personalization(cached, args.method)
        else:
            learned = engine.personalize(pair, args.method, finetune, progress=False)
            with atomic_directory(cached) as temporary:
                learned.save(temporary)
        for setting in todo:
            sampling = replace(SamplingConfig(steps=args.steps), **setting)
            images = engine.generate(pair, learned, args.seeds, sampling, method=args.method, progress=False)
            items = [
                EvalItem(image, toy.source_image, toy.driving_image, toy.target_prompt, toy.target_image)
                for image in images
            ]
            scores = [dict(a, **b) for a, b in zip(*(m.score(items) for m in metrics), strict=True)]
            row = {
                "pair_id": toy.pair_id,
                "settings": setting,
                "metrics": {k: sum(s[k] for s in scores) / len(scores) for k in GT_KEYS},
            }
            rows.append(row)
            done[(toy.pair_id, json.dumps(setting, sort_keys=True))] = row
        write_text(results_file, "".join(json.dumps(r) + "\n" for r in rows))
    print(
        f"\n{args.pairs} pairs x {len(args.seeds)} seeds, {args.method}'s LoRA {asdict(finetune)['steps']} steps; "
        f"mean over pairs +- 95% interval\n"
    )
    print("| " + " | ".join(settings[0]) + " | " + " | ".join(GT_KEYS) + " |")
    print("|" + "---|" * (len(settings[0]) + len(GT_KEYS)))
    summary = []
    for setting in settings:
        key = json.dumps(setting, sort_keys=True)
        per_pair = [r["metrics"] for r in rows if json.dumps(r["settings"], sort_keys=True) == key]
        cells = []
        for metric in GT_KEYS:
            mean, half = mean_interval([m[metric] for m in per_pair], 0.95)
            cells.append(f"{mean:.3f} ± {half:.3f}" if half is not None else f"{mean:.3f}")
        summary.append((setting, cells))
    for setting, cells in summary:
        print("| " + " | ".join(str(v) for v in setting.values()) + " | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("table", "sweep"):
        p = sub.add_parser(name)
        p.add_argument("--pairs", type=int, default=24, help="held-out pairs (default 24)")
        p.add_argument("--pair-seed", type=int, default=0)
        p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
        p.add_argument("--model", default="toy")
        p.add_argument("--out", required=True)
        p.add_argument(
            "--split",
            choices=("table", "tune"),
            default="table" if name == "table" else "tune",
            help="held-out combinations (default: table for tables, tune for sweeps)",
        )
    t = sub.choices["table"]
    t.add_argument("--methods", nargs="+", default=list(METHODS))
    t.add_argument(
        "extra", nargs=argparse.REMAINDER, help="more bench flags after --, e.g. -- --train-steps 300"
    )
    s = sub.choices["sweep"]
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument(
        "--method", choices=("imposter-guided", "imposter-subject"), default="imposter-guided",
        help="whose fine-tune and sampling: imposter (LoRA on both pairs) or imposter-subject (the source alone)",
    )  # fmt: skip
    s.add_argument("--train-steps", type=int, default=500)
    s.add_argument("--lr", type=float, default=5e-4)
    s.add_argument("--rank", type=int, default=4, help="LoRA rank (default 4, the paper's)")
    s.add_argument(
        "--lora-layers", choices=LORA_LAYERS, default="attention",
        help="LoRA on the attention projections (default) or also the ResNet convolutions (wide)",
    )  # fmt: skip
    s.add_argument("--steps", type=int, default=50)
    s.add_argument("--k", type=int, nargs="+", default=[5])
    s.add_argument("--amp-scale", type=float, nargs="+", default=[0.0])
    s.add_argument("--phase-scale", type=float, nargs="+", default=[0.0])
    s.add_argument("--phase-distance", nargs="+", default=["cos"])
    s.add_argument("--guidance-space", nargs="+", default=["noisy"])
    s.add_argument("--guidance-normalization", nargs="+", default=["sum"])
    s.add_argument(
        "--phase-cutoff", nargs="+", type=phase_cutoff, default=[None],
        help="phase guidance up to this frequency (cycles per latent pixel); 'all': every frequency",
    )  # fmt: skip
    s.add_argument(
        "--guidance-until", nargs="+", type=float, default=[1.0], help="fraction of the steps guided"
    )
    s.add_argument(
        "--source-attention-from", nargs="+", type=step_or_off, default=[None],
        help="steps from which the decoder also attends to the source ('off': never; imposter.source_attention)",
    )  # fmt: skip
    s.add_argument(
        "--driving-strength", nargs="+", type=strength_or_off, default=[None],
        help="start from the driving image noised to this strength, img2img ('off': pure noise)",
    )  # fmt: skip
    s.add_argument(
        "--driving-inversion", action="store_true",
        help="reach --driving-strength's noise level by DDIM inversion of the driving image (imposter.inversion)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.mode == "table":
        args.extra = [a for a in args.extra if a != "--"]
        table(args)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
