"""Command line: argument parsing only; every command calls the library.

    imposter generate --source dog.png --source-prompt "a dog" --driving cat.png \\
        --driving-prompt "a cat drinking water from a mug" --seeds 0 1 2 --out runs/dog-drinks
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import ImposterError
from .flags import (
    add_generation_flags,
    add_memory_flags,
    add_model_flags,
    add_pair_flags,
    add_pose_flags,
    named_settings,
    pose_fields,
    quiet_libraries,
    resolve_method,
    run_fields,
)
from .pose_detection import detector_names


def cmd_generate(args: argparse.Namespace) -> None:
    from .config import RunConfig
    from .run import run_generate

    method = resolve_method(args)
    finetune, sampling = named_settings(args)
    config = RunConfig(
        **run_fields(args),
        **pose_fields(args),
        seeds=tuple(args.seeds),
        finetune=finetune,
        sampling=sampling,
        offload=args.offload,
    )
    out = args.out or Path("runs") / f"{args.method}-{Path(args.source).stem}-{Path(args.driving).stem}"
    result = run_generate(config, out, method=method, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {len(result.images)} image(s) and the grid {result.grid}")


def cmd_keypoints(args: argparse.Namespace) -> None:
    from .fileio import save_image, write_text
    from .images import load_image
    from .pose_detection import detected, draw_skeleton
    from .retarget import to_openpose

    for path in args.images:
        image = load_image(path, "image")
        points = detected(image, args.detect_pose, path.name, print)
        stem = args.out / Path(path).stem
        json_path = write_text(
            stem.with_name(f"{stem.name}_keypoints.json"), json.dumps(to_openpose(points)) + "\n"
        )
        zoom = max(1, 512 // max(image.size))  # a toy picture is drawn larger
        preview = save_image(draw_skeleton(image, points, zoom), stem.with_name(f"{stem.name}_skeleton.png"))
        print(f"{json_path} (OpenPose JSON: --source-keypoints / --driving-keypoints), {preview}")


# Packages that add their own subcommands with ``register(subparsers)``; each lives beside its library code.
COMMAND_MODULES = ("imposter.toyworld.cli", "imposter.bench.cli", "imposter.video.cli", "imposter.app.cli")


def build_parser() -> argparse.ArgumentParser:
    """The ``imposter`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="imposter", description="Make the subject of one image perform the action of another (ImPoster)."
    )
    parser.add_argument("--version", action="version", version=f"imposter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="make the source subject perform the driving action")
    add_pair_flags(gen, "image of the action", "runs/METHOD-SOURCE-DRIVING")
    add_model_flags(gen)
    add_memory_flags(gen)
    add_generation_flags(gen)
    add_pose_flags(gen)
    gen.set_defaults(func=cmd_generate)
    points = sub.add_parser(
        "keypoints",
        help="detect the body keypoints of images and write them as OpenPose JSON, with a picture of the "
        "skeleton to check (imposter reads the JSON)",
    )
    points.add_argument("images", nargs="+", type=Path, help="the pictures")
    points.add_argument("--detect-pose", required=True, choices=detector_names(), help="the detector")
    points.add_argument(
        "--out",
        type=Path,
        default=Path("runs/keypoints"),
        help="folder for NAME_keypoints.json and NAME_skeleton.png (default runs/keypoints)",
    )
    points.set_defaults(func=cmd_keypoints)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imposter`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warnings
    quiet_libraries()
    try:
        args.func(args)
    except ImposterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume where it stopped", file=sys.stderr)
        return 130
    except Exception as err:
        if not out_of_memory(err):
            raise
        print(f"error: {out_of_memory_advice(args)}", file=sys.stderr)
        return 2
    return 0


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is the accelerator running out of memory (CUDA's OutOfMemoryError, or MPS's)."""
    return type(err).__name__ == "OutOfMemoryError" or "out of memory" in str(err).lower()


def out_of_memory_advice(args: argparse.Namespace) -> str:
    """What to lower, among the flags this command has."""
    advice = {
        "batch_size": "--batch-size 1 (fewer images denoised together)",
        "offload": "--offload (keep the models on the CPU until each is needed)",
        "dtype": "--dtype float16 or bfloat16 (half the memory of float32)",
    }
    fixes = [text for dest, text in advice.items() if hasattr(args, dest)]
    return "out of GPU memory; " + ("try " + ", or ".join(fixes) if fixes else "use a smaller model")
