"""Subcommands of this package: ``imposter animate``.

    imposter animate --source dog.png --source-prompt "a dog" --driving dance.mp4 \\
        --driving-prompt "a woman dancing" --max-frames 24 --out runs/dog-dances
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..flags import (
    add_generation_flags,
    add_keypoint_flags,
    add_model_flags,
    add_pair_flags,
    named_settings,
    resolve_method,
    run_fields,
)
from ..pose_detection import detector_names
from .config import DEFAULT_FRAME_BATCH, DEFAULT_TRAIN_FRAMES, AnimateConfig


def cmd_animate(args: argparse.Namespace) -> None:
    if len(args.seeds) != 1:
        raise ConfigError(
            f"$seeds takes one value for animate (every frame starts from that seed's noise); got {args.seeds}"
        )
    from .animate import run_animate, sequence_method

    method = sequence_method(resolve_method(args).name)
    finetune, sampling = named_settings(args)
    config = AnimateConfig(
        **run_fields(args),
        seed=args.seeds[0],
        every=args.every,
        max_frames=args.max_frames,
        train_frames=args.train_frames,
        fps=args.fps,
        controlnet=args.controlnet,
        driving_pose_maps=str(args.driving_pose_maps) if args.driving_pose_maps else None,
        source_keypoints=str(args.source_keypoints) if args.source_keypoints else None,
        driving_keypoints=str(args.driving_keypoints) if args.driving_keypoints else None,
        source_mask=str(args.source_mask) if args.source_mask else None,
        detect_pose=args.detect_pose,
        finetune=finetune,
        sampling=sampling,
    )
    out = args.out or Path("runs") / f"animate-{Path(args.source).stem}-{Path(args.driving).stem}"
    result = run_animate(config, out, method=method, overwrite=args.overwrite, progress=not args.quiet)
    wrote = ", ".join(str(p) for p in (result.gif, result.mp4, result.strip) if p is not None)
    print(f"wrote {len(result.frames)} frame(s) to {out / 'frames'}, and {wrote}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``animate`` to the ``imposter`` parser."""
    animate = subparsers.add_parser(
        "animate",
        help="make the source subject perform a driving video or frame sequence",
        epilog=f"--seeds takes one seed: every frame starts from its noise. --batch-size is the number of "
        f"frames denoised together (default {DEFAULT_FRAME_BATCH}).",
    )
    add_pair_flags(
        animate, "the action: a video (MP4, MOV, GIF...) or a folder of frames", "runs/animate-SOURCE-DRIVING"
    )
    frames = animate.add_argument_group("driving frames")
    frames.add_argument("--every", type=int, default=1, help="keep one frame in N (default 1: all)")
    frames.add_argument("--max-frames", type=int, default=None, help="stop after this many kept frames")
    frames.add_argument(
        "--train-frames",
        type=int,
        default=DEFAULT_TRAIN_FRAMES,
        help=f"driving frames in the fine-tune, evenly spaced (default {DEFAULT_TRAIN_FRAMES})",
    )
    frames.add_argument(
        "--fps",
        type=float,
        default=None,
        help="rate of the GIF/MP4 (default: the video's, or 8 for a folder)",
    )
    pose = animate.add_argument_group("pose-control (a ControlNet fed each driving frame's pose map)")
    pose.add_argument("--controlnet", default=None, help="hub id or diffusers folder of a pose ControlNet")
    pose.add_argument(
        "--driving-pose-maps",
        type=Path,
        default=None,
        help="the driving frames' OpenPose or DensePose renders: a video or a folder, one map per frame",
    )
    keypoints = animate.add_argument_group("imposter (body keypoints of the source and every frame)")
    add_keypoint_flags(
        keypoints, "a folder of OpenPose JSON files, one per driving frame (OpenPose's --write_json)"
    )
    keypoints.add_argument(
        "--detect-pose",
        choices=detector_names(),
        default=None,
        help="detect the keypoints not given (openpose or rtmpose: people; animal: animals; auto: rtmpose, "
        "else animal; toy: the toy world's figures); optional packages, weights downloaded on first use",
    )
    add_model_flags(animate)
    add_generation_flags(animate)
    animate.set_defaults(func=cmd_animate)
