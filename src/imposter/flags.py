"""Command-line flags shared by the subcommands (generate, bench, animate, app), and the configs they make.

Each subcommand's module adds its own flags and imports these; none imports ``imposter.cli``, which only
assembles the parser. Nothing here imports torch, so ``imposter --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import (
    FINETUNE_FLAGS,
    FITS,
    GUIDANCE_SPACES,
    LORA_LAYERS,
    NORMALIZATIONS,
    NOT_GIVEN,
    PHASE_DISTANCES,
)

if TYPE_CHECKING:
    from .methods.base import Method

# flag dest -> SamplingConfig field: flags left unset (NOT_GIVEN) leave it to the paper, method or family
SAMPLING_FLAGS = {
    "steps": "steps",
    "k": "k",
    "amp_scale": "amp_scale",
    "phase_scale": "phase_scale",
    "guidance_scale": "guidance_scale",
    "phase_distance": "phase_distance",
    "guidance_space": "guidance_space",
    "guidance_normalization": "guidance_normalization",
    "phase_cutoff": "phase_cutoff",
    "guidance_until": "guidance_until",
    "eta": "eta",
    "batch_size": "batch_size",
    "controlnet_scale": "controlnet_scale",
    "source_attention_from": "source_attention_from",
    "driving_strength": "driving_strength",
    "driving_inversion": "driving_inversion",
    "scene_strength": "scene_strength",
}


def _number_or_none(text: str, number: type, word: str, what: str) -> Any:
    """``number(text)``, or None for ``word`` (or "none"); an argparse error naming both otherwise."""
    if text.strip().lower() in (word, "none"):
        return None
    try:
        return number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} or '{word}', got {text!r}") from None


def phase_cutoff(text: str) -> float | None:
    """``--phase-cutoff`` value: a frequency in cycles per latent pixel, or "all" (None: every frequency)."""
    return _number_or_none(text, float, "all", "a number")


def step_or_off(text: str) -> int | None:
    """``--source-attention-from`` value: a denoising step, or "off" (None)."""
    return _number_or_none(text, int, "off", "a step number")


def strength_or_off(text: str) -> float | None:
    """``--driving-strength`` value: an img2img strength, or "off" (None: start from pure noise)."""
    return _number_or_none(text, float, "off", "a strength")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --dtype."""
    parser.add_argument("--model", default="toy", help="hub id, local diffusers folder, or 'toy' (default)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "float16", "bfloat16"],
        help="default: bf16/fp16 on GPU, fp32 on CPU",
    )


def add_memory_flags(parser: argparse.ArgumentParser) -> None:
    """--offload: model CPU offload, for GPUs that cannot hold the whole pipeline (SDXL, FLUX.1)."""
    parser.add_argument(
        "--offload",
        action="store_true",
        help="keep the models on the CPU and move each to the GPU only while it runs (less GPU memory, slower)",
    )


def add_generation_flags(parser: argparse.ArgumentParser, multiple_methods: bool = False) -> None:
    """The method, fine-tuning and sampling flags shared by generate, bench and animate."""
    from .methods import METHOD_NAMES

    if multiple_methods:
        parser.add_argument(
            "--methods", "--method", dest="methods", nargs="+", default=["imposter", "baseline++"],
            help=f"any of: {', '.join(METHOD_NAMES)} (default: imposter baseline++)",
        )  # fmt: skip
    else:
        parser.add_argument(
            "--method",
            default=None,
            help=f"one of: {', '.join(METHOD_NAMES)} (default: the one stored with --adapter, else imposter)",
        )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one image per seed (default: 0)")
    parser.add_argument(
        "--fit",
        choices=FITS,
        default="pad",
        help="non-square inputs: pad with black (authors) or center-crop",
    )
    parser.add_argument(
        "--height", type=int, default=None, help="default: the model's native size (512 for SD 2.1-base)"
    )
    parser.add_argument("--width", type=int, default=None)
    add_finetune_flags(parser)
    add_sampling_flags(parser)


def add_finetune_flags(parser: argparse.ArgumentParser) -> None:
    """--train-steps, --lr, --rank, --train-seed, --gradient-checkpointing (left unset: NOT_GIVEN)."""
    ft = parser.add_argument_group("fine-tuning (paper Sec. 4 defaults)")
    ft.add_argument("--train-steps", type=int, default=NOT_GIVEN, help="fine-tuning iterations (default 500)")
    ft.add_argument(
        "--lr", type=float, default=NOT_GIVEN, help="learning rate (default 5e-4, DreamBooth-LoRA)"
    )
    ft.add_argument("--rank", type=int, default=NOT_GIVEN, help="LoRA rank (default 4)")
    ft.add_argument(
        "--lora-layers",
        choices=LORA_LAYERS,
        default=NOT_GIVEN,
        help="attention (the paper's) or wide: also the ResNet convolutions (SD, SDXL) or feed-forwards (FLUX.1)",
    )
    ft.add_argument(
        "--train-seed",
        type=int,
        default=NOT_GIVEN,
        help="seed of the fine-tuning noise and LoRA init (default 0)",
    )
    ft.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=NOT_GIVEN,
        help="recompute activations in the backward pass: less memory, slower (default: on for SDXL, FLUX.1)",
    )


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    """The SamplingConfig flags (SAMPLING_FLAGS; left unset: NOT_GIVEN)."""
    sp = parser.add_argument_group("sampling (paper Sec. 4 defaults)")
    sp.add_argument("--steps", type=int, default=NOT_GIVEN, help="DDIM steps (default 50)")
    sp.add_argument(
        "--k", type=int, default=NOT_GIVEN, help="steps denoised with the driving caption (default 5)"
    )
    sp.add_argument(
        "--amp-scale",
        type=float,
        default=NOT_GIVEN,
        help="s_a, amplitude guidance scale (default 0.03, measured on the toy world)",
    )
    sp.add_argument(
        "--phase-scale",
        type=float,
        default=NOT_GIVEN,
        help="s_p, phase guidance scale (default 0.2, measured on the toy world)",
    )
    sp.add_argument(
        "--guidance-scale", type=float, default=NOT_GIVEN, help="classifier-free guidance (default 7.5)"
    )
    sp.add_argument(
        "--phase-distance",
        choices=PHASE_DISTANCES,
        default=NOT_GIVEN,
        help="cos (wrap-safe) or abs (authors)",
    )
    sp.add_argument(
        "--guidance-space",
        choices=GUIDANCE_SPACES,
        default=NOT_GIVEN,
        help="guide the noisy latents or the x0 prediction",
    )
    sp.add_argument(
        "--guidance-normalization",
        choices=NORMALIZATIONS,
        default=NOT_GIVEN,
        help="what s_a, s_p mean (see docs)",
    )
    sp.add_argument(
        "--phase-cutoff",
        type=phase_cutoff,
        default=NOT_GIVEN,
        help="guide the phase only up to this frequency, cycles per latent pixel (default 0.35; 'all': every "
        "frequency, as the paper)",
    )
    sp.add_argument(
        "--guidance-until",
        type=float,
        default=NOT_GIVEN,
        help="guide during this fraction of the steps only (default 1: every step)",
    )
    sp.add_argument("--eta", type=float, default=NOT_GIVEN, help="DDIM eta (default 0)")
    sp.add_argument(
        "--batch-size", type=int, default=NOT_GIVEN, help="seeds denoised together (default: all)"
    )
    sp.add_argument(
        "--controlnet-scale",
        type=float,
        default=NOT_GIVEN,
        help="pose-control: weight of the ControlNet's residuals (default 1, as diffusers)",
    )
    sp.add_argument(
        "--source-attention-from",
        type=step_or_off,
        default=NOT_GIVEN,
        help="from this step on, the decoder's self-attention also attends to the source image (SD, SDXL; "
        "default off, imposter-attend: 5); 'off': never",
    )
    sp.add_argument(
        "--driving-strength",
        type=strength_or_off,
        default=NOT_GIVEN,
        help="start from the driving image noised to this strength, img2img (default off: pure noise; "
        "sdedit: 0.8, imposter-sdedit: 0.6; imposter starts from the source retargeted into the "
        "driving pose instead, default 0.1); 'off': pure noise",
    )
    sp.add_argument(
        "--driving-inversion",
        action="store_const",
        const=True,
        default=NOT_GIVEN,
        help="with --driving-strength: reach its noise level by DDIM inversion of the driving image instead of "
        "fresh noise (SD, SDXL; every seed starts alike)",
    )
    sp.add_argument(
        "--scene-strength",
        type=strength_or_off,
        default=NOT_GIVEN,
        help="imposter: redraw all but the moved figure from this higher strength (its old place, the "
        "backdrop, a held object), the figure from --driving-strength (default off: one strength)",
    )


def add_pose_flags(parser: argparse.ArgumentParser) -> None:
    """pose-control's inputs: a pose ControlNet and the driving image's pose map."""
    from .controlnet import EXAMPLES
    from .pose_detection import detector_names

    group = parser.add_argument_group("pose-control (a ControlNet fed the driving pose map)")
    group.add_argument(
        "--controlnet",
        default=None,
        help=f"hub id or diffusers folder of a pose ControlNet, e.g. {EXAMPLES['sd']}",
    )
    group.add_argument(
        "--driving-pose-map",
        type=Path,
        default=None,
        help="an OpenPose or DensePose render of the driving image",
    )
    group.add_argument(
        "--detect-pose",
        choices=detector_names(),
        default=None,
        help="detect what no file gives: imposter's keypoints, pose-control's OpenPose map (openpose "
        "or rtmpose: people; animal: animals; auto: rtmpose, else animal; toy: the toy world's figures, "
        "keypoints only); optional packages, weights downloaded on first use",
    )
    group = parser.add_argument_group("imposter (both images' body keypoints)")
    add_keypoint_flags(
        group, "OpenPose JSON of the driving image's body joints (OpenPose's --write_json format)"
    )
    group.add_argument(
        "--driving-mask",
        type=Path,
        default=None,
        help="a matte of the driving figure, or 'auto' (rembg); default: told from a plain backdrop by colour",
    )


def add_keypoint_flags(group: Any, driving_help: str) -> None:
    """imposter's inputs: the source's body keypoints and matte, the driving image's (or frames')
    keypoints."""
    group.add_argument(
        "--source-keypoints",
        type=Path,
        default=None,
        help="OpenPose JSON of the source image's body joints (OpenPose's --write_json format)",
    )
    group.add_argument("--driving-keypoints", type=Path, default=None, help=driving_help)
    group.add_argument(
        "--source-mask",
        type=Path,
        default=None,
        help="a matte of the source figure (light figure on black, e.g. rembg's), or 'auto': found by rembg "
        '(pip install "imposter-diffusion[pose]"); default: told from a plain backdrop by colour',
    )


def add_pair_flags(parser: argparse.ArgumentParser, driving_help: str, default_out: str) -> None:
    """The inputs and run-folder flags of a job: --source/--driving and captions, --out, --adapter, ..."""
    parser.add_argument("--source", required=True, type=Path, help="image of the subject")
    parser.add_argument("--source-prompt", required=True, help='caption of the source, e.g. "a dog"')
    parser.add_argument("--driving", required=True, type=Path, help=driving_help)
    parser.add_argument(
        "--driving-prompt", required=True, help='caption of the driving image, e.g. "a woman dancing"'
    )
    parser.add_argument(
        "--target-prompt", default=None, help="default: the driving caption with the source as subject"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default {default_out})")
    parser.add_argument(
        "--adapter", type=Path, default=None, help="adapter/ folder of an earlier run: skip fine-tuning"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that holds other settings"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_fields(args: argparse.Namespace) -> dict:
    """The settings every job's config shares, from the flags of ``add_pair_flags`` and the model flags."""
    return dict(
        model=args.model,
        method=args.method,
        source=str(args.source),
        driving=str(args.driving),
        source_prompt=args.source_prompt,
        driving_prompt=args.driving_prompt,
        target_prompt=args.target_prompt or "",
        fit=args.fit,
        height=args.height,
        width=args.width,
        adapter=str(args.adapter) if args.adapter else None,
        device=args.device or "",
        dtype=args.dtype or "",
    )


def pose_fields(args: argparse.Namespace) -> dict:
    """The settings of ``add_pose_flags``, as RunConfig fields."""
    return dict(
        controlnet=args.controlnet,
        driving_pose_map=str(args.driving_pose_map) if args.driving_pose_map else None,
        detect_pose=args.detect_pose,
        source_keypoints=str(args.source_keypoints) if args.source_keypoints else None,
        driving_keypoints=str(args.driving_keypoints) if args.driving_keypoints else None,
        source_mask=str(args.source_mask) if args.source_mask else None,
        driving_mask=str(args.driving_mask) if args.driving_mask else None,
    )


def resolve_method(args: argparse.Namespace) -> Method:
    """The method of a one-method command, looked up once: --method, else the one stored with --adapter,
    else ImPoster; ``args.method`` is set to its name."""
    from .methods import get_method
    from .personalizations import stored_method

    adapter = getattr(args, "adapter", None)
    args.method = args.method or (stored_method(adapter) if adapter else None) or "imposter"
    return get_method(args.method)


def given(args: argparse.Namespace, dest: str) -> bool:
    """Whether the user set the flag ``dest`` (its default is NOT_GIVEN: None can be a value, "all")."""
    return getattr(args, dest, NOT_GIVEN) is not NOT_GIVEN


def named_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fine-tuning and sampling settings the flags set, by field (a job resolves them with the rest)."""
    finetune = {field: getattr(args, dest) for dest, field in FINETUNE_FLAGS.items() if given(args, dest)}
    sampling = {field: getattr(args, dest) for dest, field in SAMPLING_FLAGS.items() if given(args, dest)}
    return finetune, sampling


def quiet_libraries() -> None:
    """Library chatter (loading bars, deprecation notes) off: our own progress bars and messages stay."""

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
