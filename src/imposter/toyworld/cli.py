"""Subcommands of the toy world: ``imposter toy pairs|train|decoder|classifier|eval``."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path


def cmd_pairs(args: argparse.Namespace) -> None:
    from .pairs import write_pairs

    path = write_pairs(args.n, args.seed, args.out, args.split, keypoints=not args.no_keypoints)
    print(f"wrote {args.n} {args.split} pairs with ground truth to {path}")


def _given(args: argparse.Namespace, *names: str) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _train_sd(args: argparse.Namespace, log, command: str) -> dict:
    """The pipeline (unless ``args.out`` already holds one trained with these settings), then its pose
    ControlNet stage (``--controlnet-steps``, 0: none) and its keypoint detector (``--keypoint-steps``, 0:
    none), each resumable: a killed run carries on where it was."""
    from dataclasses import asdict

    from .classifier import ClassifierConfig
    from .keypoint_detector import KEYPOINTS_FOLDER, ToyKeypointConfig, train_keypoint_detector
    from .train import ToyTrainConfig, train_toy_model
    from .train_controlnet import CONTROLNET_FOLDER, ToyControlNetConfig, add_pose_controlnet

    precision = _given(args, "precision")  # the convolutional stages': VAE, decoder, classifier, detector
    config = ToyTrainConfig(
        **_given(args, "seed", "examples", "vae_steps", "decoder_steps", "unet_steps", "sanity_samples"),
        **precision,
    )
    classifier = ClassifierConfig(
        **{
            k.removeprefix("classifier_"): v
            for k, v in _given(args, "classifier_steps", "classifier_instances").items()
        },
        **precision,
    )
    out, progress = Path(args.out), not args.quiet
    recorded = out / "training.json"
    settings = json.loads(json.dumps({"train": asdict(config), "classifier": asdict(classifier)}))
    if recorded.is_file() and _trained_with(json.loads(recorded.read_text())) == settings:
        log(f"{out} holds a toy pipeline trained with these settings: going on to its add-ons")
        summary = json.loads(recorded.read_text())
    else:
        summary = train_toy_model(
            out, config, classifier=classifier, log=log, progress=progress, command=command
        )
    steps = getattr(args, "controlnet_steps", None)
    controlnet = ToyControlNetConfig(**({"steps": steps} if steps is not None else {}))
    if controlnet.steps > 0 and not (out / CONTROLNET_FOLDER / "config.json").is_file():
        stage = add_pose_controlnet(out, controlnet, log, progress, command)
        summary["controlnet"] = stage
        summary["timings_s"]["controlnet"] = stage["seconds"]
    steps = getattr(args, "keypoint_steps", None)
    detector = ToyKeypointConfig(**({"steps": steps} if steps is not None else {}), **precision)
    if detector.steps > 0 and not (out / KEYPOINTS_FOLDER / "detector.safetensors").is_file():
        stage = train_keypoint_detector(out, detector, log, progress, command)
        summary["keypoints"] = stage
        summary["timings_s"]["keypoints"] = stage["seconds"]
    return summary


def _trained_with(summary: dict) -> dict:
    """The settings a saved toy pipeline's training.json records (what a rerun must match to skip it); one
    written before the precision setting was trained in float32."""
    fp32 = {"precision": "fp32"}
    return {"train": fp32 | summary["train"], "classifier": fp32 | summary["classifier"]["config"]}


def _train_flux(args: argparse.Namespace, log, command: str) -> dict:
    from ..errors import ConfigError
    from .train_flux import ToyFluxTrainConfig, train_toy_flux

    sd_only = _given(
        args,
        "vae_steps",
        "decoder_steps",
        "unet_steps",
        "classifier_steps",
        "classifier_instances",
        "controlnet_steps",
        "keypoint_steps",
        "precision",
    )
    if sd_only:
        flags = ", ".join(f"${k}" for k in sd_only)
        raise ConfigError(f"{flags}: SD toy settings; $family flux takes $steps (transformer steps)")
    config = ToyFluxTrainConfig(**_given(args, "seed", "examples", "steps", "sanity_samples", "threads"))
    return train_toy_flux(args.out, args.base, config, log=log, progress=not args.quiet, command=command)


def cmd_train(args: argparse.Namespace) -> None:
    from ..errors import ConfigError

    if args.family == "sd" and (args.steps is not None or args.base is not None or args.threads is not None):
        raise ConfigError("$steps, $base and $threads are $family flux settings; SD takes $unet_steps")
    log_path = Path(str(args.out).rstrip("/") + ".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log_file:  # a resumed run continues its log

        def log(line: str) -> None:
            print(line, flush=True)
            log_file.write(line + "\n")
            log_file.flush()

        command = shlex.join(["imposter", *sys.argv[1:]])
        summary = (_train_flux if args.family == "flux" else _train_sd)(args, log, command)
    kept = Path(args.out) / "train.log"  # the checkpoint carries its own log
    if kept.is_file():  # a rerun that only added the ControlNet stage: its lines follow the pipeline's
        with kept.open("a") as merged:
            merged.write(log_path.read_text())
        log_path.unlink()
    else:
        shutil.move(log_path, kept)
    print(
        f"saved the toy pipeline to {args.out} (with train.log); total {sum(summary['timings_s'].values()):.0f} s"
    )


def cmd_classifier(args: argparse.Namespace) -> None:
    from .classifier import ClassifierConfig
    from .refit import retrain_classifier

    given = {k: getattr(args, k) for k in ("steps", "instances") if getattr(args, k) is not None}
    retrain_classifier(
        args.model,
        ClassifierConfig(**given),
        sanity_samples=args.sanity_samples,
        progress=not args.quiet,
        command=shlex.join(["imposter", *sys.argv[1:]]),
    )


def cmd_decoder(args: argparse.Namespace) -> None:
    from .refit import refine_decoder
    from .train import ToyTrainConfig

    summary = refine_decoder(
        args.model,
        ToyTrainConfig(**_given(args, "decoder_steps")),
        progress=not args.quiet,
        command=shlex.join(["imposter", *sys.argv[1:]]),
    )
    print(
        f"refined the decoder of {args.model} in {summary['timings_s']['decoder']:.0f} s; its classifier learnt "
        f"from the old one: imposter toy classifier --model {args.model}"
    )


def cmd_controlnet(args: argparse.Namespace) -> None:
    from .train_controlnet import ToyControlNetConfig, add_pose_controlnet

    config = ToyControlNetConfig(**_given(args, "steps", "examples", "seed"))
    stage = add_pose_controlnet(
        args.model, config, progress=not args.quiet, command=shlex.join(["imposter", *sys.argv[1:]])
    )
    print(f"saved the pose ControlNet to {Path(args.model) / 'controlnet'} ({stage['seconds']:.0f} s)")


def cmd_keypoints(args: argparse.Namespace) -> None:
    from .keypoint_detector import ToyKeypointConfig, train_keypoint_detector

    config = ToyKeypointConfig(**_given(args, "steps", "batch", "seed"))
    train_keypoint_detector(
        args.model, config, progress=not args.quiet, command=shlex.join(["imposter", *sys.argv[1:]])
    )


def cmd_eval(args: argparse.Namespace) -> None:
    from ..models import load_pipeline, model_source
    from .classifier import load_classifier
    from .sanity import sanity_check

    pipe = load_pipeline(args.model, "cpu")
    folder = model_source(args.model)
    # a toy FLUX pipeline has no classifier of its own: it shares the SD toy's VAE, so the bundled one reads it
    classifier = load_classifier(folder if (folder / "classifier").is_dir() else None)
    result = sanity_check(pipe, classifier, samples=args.samples, seed=args.seed, progress=not args.quiet)
    print(json.dumps(result, indent=2))


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(
        args.out,
        pair_seed=args.pair_seed,
        seeds=args.seeds,
        device=args.device,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` and ``toy`` (pairs, train, classifier, decoder, controlnet, keypoints, eval) to the
    ``imposter`` parser."""
    _add_demo(subparsers)
    toy = subparsers.add_parser(
        "toy", help="the toy world: ground-truth pairs, and the bundled model's training"
    )
    sub = toy.add_subparsers(dest="toy_command", required=True)
    for add in (
        _add_pairs,
        _add_train,
        _add_classifier,
        _add_decoder,
        _add_controlnet,
        _add_keypoints,
        _add_eval,
    ):
        add(sub)


def _add_demo(subparsers: argparse._SubParsersAction) -> None:
    """``imposter demo``."""
    demo = subparsers.add_parser(
        "demo", help="ImPoster vs Baseline++ on a toy-world pair with ground truth (CPU, minutes)"
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    demo.add_argument("--pair-seed", type=int, default=0, help="which toy pair to render")
    demo.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    demo.add_argument("--device", default=None)
    demo.add_argument(
        "--overwrite", action="store_true", help="replace a demo made with other settings in --out"
    )
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(func=cmd_demo)


def _add_pairs(sub: argparse._SubParsersAction) -> None:
    """``imposter toy pairs``."""
    pairs = sub.add_parser(
        "pairs", help="render evaluation pairs (held-out subject/action) with ground truth"
    )
    pairs.add_argument("--n", type=int, default=24, help="number of pairs (default 24)")
    pairs.add_argument("--seed", type=int, default=0)
    pairs.add_argument(
        "--split",
        choices=("table", "tune"),
        default="table",
        help="held-out combinations to draw from: 'table' for reported results (default), 'tune' for "
        "choosing settings (disjoint)",
    )
    pairs.add_argument("--out", type=Path, required=True, help="folder for pairs.csv and the images")
    pairs.add_argument(
        "--no-keypoints",
        action="store_true",
        help="leave out the figures' joints (what a user without annotations has; imposter then finds "
        "them with the toy model's own detector)",
    )
    pairs.set_defaults(func=cmd_pairs)


def _add_train(sub: argparse._SubParsersAction) -> None:
    """``imposter toy train``."""
    train = sub.add_parser(
        "train",
        help="train a toy pipeline from scratch (SD: about 1.8 hours on 2 CPU cores with its ControlNet and "
        "keypoint detector; FLUX: one on 1 thread)",
    )
    train.add_argument(
        "--out", type=Path, required=True, help="folder for the pipeline (log beside it: OUT.log)"
    )
    train.add_argument(
        "--family",
        choices=("sd", "flux"),
        default="sd",
        help="sd: the StableDiffusionPipeline (VAE, classifier, UNet; default); flux: a FluxPipeline (transformer "
        "and T5, on the SD toy's VAE and CLIP)",
    )
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--examples", type=int, default=None, help="pretraining images rendered")
    train.add_argument("--vae-steps", type=int, default=None)
    train.add_argument("--decoder-steps", type=int, default=None, help="the decoder's outline stage")
    train.add_argument("--unet-steps", type=int, default=None)
    train.add_argument(
        "--controlnet-steps",
        type=int,
        default=None,
        help="the pose ControlNet stage after the pipeline (default 3000; 0: none; imposter toy controlnet runs it alone)",
    )
    train.add_argument(
        "--keypoint-steps",
        type=int,
        default=None,
        help="the keypoint detector stage last (default 2500; 0: none; imposter toy keypoints runs it alone)",
    )
    train.add_argument("--steps", type=int, default=None, help="--family flux: transformer steps")
    train.add_argument(
        "--base",
        type=Path,
        default=None,
        help="--family flux: the SD toy pipeline whose VAE, CLIP and classifier it uses (default: the bundled one)",
    )
    train.add_argument("--threads", type=int, default=None, help="--family flux: torch threads (default 1)")
    train.add_argument(
        "--precision",
        choices=("fp32", "bf16"),  # steps.PRECISIONS, without importing torch to build the parser
        default=None,
        help="the VAE's, decoder's, classifier's and keypoint detector's forward pass: bf16 (default, what made "
        "the bundled model; autocast, about 2x faster on CPUs with AMX or AVX-512 BF16) or fp32",
    )
    train.add_argument("--classifier-steps", type=int, default=None)
    train.add_argument(
        "--classifier-instances",
        type=int,
        default=None,
        help="instances the classifier learns from (two poses each)",
    )
    train.add_argument(
        "--sanity-samples",
        type=int,
        default=None,
        help="generations per caption in the final check (0: skip)",
    )
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=cmd_train)


def _add_classifier(sub: argparse._SubParsersAction) -> None:
    """``imposter toy classifier``."""
    retrain = sub.add_parser(
        "classifier",
        help="train a toy pipeline's subject/action classifier anew and re-measure its sanity with it",
    )
    retrain.add_argument("--model", required=True, help="a toy pipeline folder (its classifier/ is replaced)")
    retrain.add_argument("--steps", type=int, default=None)
    retrain.add_argument("--instances", type=int, default=None)
    retrain.add_argument("--sanity-samples", type=int, default=4, help="generations per caption (0: skip)")
    retrain.add_argument("--quiet", action="store_true")
    retrain.set_defaults(func=cmd_classifier)


def _add_decoder(sub: argparse._SubParsersAction) -> None:
    """``imposter toy decoder``."""
    decoder = sub.add_parser(
        "decoder",
        help="run the training's decoder stage again on a toy pipeline (its VAE decoder is replaced; the "
        "latents, UNet and text encoder stay); then retrain its classifier",
    )
    decoder.add_argument("--model", required=True, help="a toy pipeline folder (its vae/ is replaced)")
    decoder.add_argument("--decoder-steps", type=int, default=None)
    decoder.add_argument("--quiet", action="store_true")
    decoder.set_defaults(func=cmd_decoder)


def _add_stage(sub: argparse._SubParsersAction, folder: str, help: str, func) -> argparse.ArgumentParser:
    """``imposter toy FOLDER``: an add-on stage trained beside a toy pipeline, into its ``FOLDER/``."""
    stage = sub.add_parser(folder, help=help)
    stage.add_argument("--model", required=True, help=f"a toy pipeline folder ({folder}/ is written in it)")
    stage.add_argument("--steps", type=int, default=None)
    stage.add_argument("--seed", type=int, default=None)
    stage.add_argument("--quiet", action="store_true")
    stage.set_defaults(func=func)
    return stage


def _add_controlnet(sub: argparse._SubParsersAction) -> None:
    """``imposter toy controlnet``."""
    control = _add_stage(
        sub,
        "controlnet",
        "train a pose ControlNet on the world's part maps beside a toy pipeline (its controlnet/; "
        "resumable; what pose-control uses on that model)",
        cmd_controlnet,
    )
    control.add_argument("--examples", type=int, default=None, help="examples rendered with their part maps")


def _add_keypoints(sub: argparse._SubParsersAction) -> None:
    """``imposter toy keypoints``."""
    keypoints = _add_stage(
        sub,
        "keypoints",
        "train the toy world's body-keypoint detector beside a toy pipeline (its keypoints/; resumable; "
        "what --detect-pose toy reads; default 2500 steps)",
        cmd_keypoints,
    )
    keypoints.add_argument(
        "--batch", type=int, default=None, help="pretraining figures per step (default 32)"
    )


def _add_eval(sub: argparse._SubParsersAction) -> None:
    """``imposter toy eval``."""
    evaluate = sub.add_parser(
        "eval", help="text-to-image sanity: subject and action accuracy of a toy pipeline"
    )
    evaluate.add_argument(
        "--model", default="toy", help="a toy pipeline folder, toy or toy-flux (default: toy)"
    )
    evaluate.add_argument("--samples", type=int, default=4, help="generations per (subject, action)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(func=cmd_eval)
