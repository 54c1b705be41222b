"""Animate toy-world driving sequences and score every frame against its exact ground truth.

    python benchmarks/animate_toy.py                   # 3 sequences x 8 frames, the toy model: ~5 min on 2 cores
    python benchmarks/animate_toy.py --sequences 1 --frames 4 --train-steps 100 --no-docs
    python benchmarks/animate_toy.py --method pose-control --no-docs   # DreamPose's way: each frame's part map
    python benchmarks/animate_toy.py --method imposter --no-docs   # each frame's joints, nothing learned
    python benchmarks/animate_toy.py --method imposter --detect-pose toy --no-docs   # no joint files

Each sequence: a source subject S standing, a driver D != S moving from standing into action A, with
(S, A) held out of pretraining (:mod:`imposter.toyworld.sequences`). ``imposter animate`` runs on it
(one fine-tune, every frame from the same noise); frame t is scored against render(S, pose_t):

- pose IoU: figure mask against the ground truth's; the "source" column is what the unchanged source
  image scores (the pose change the frame asks for);
- identity: color similarity with the source figure; leakage: with the driving figure;
- consistency: color similarity with the previous generated frame.

The "indep." columns score the same frames sampled from the same adapter but each from its own seed
(seed + t) instead of one shared noise: what sharing the noise buys.

The fine-tune runs 200 steps by default, not the paper's 500: its batch holds the source 4 times and 4
driving frames, so 200 steps see more images (1600) than the paper's 500 steps on 2 images. Prints markdown tables; writes docs/toy_animation.gif (driving |
animate | ground truth, a row per sequence) and docs/toy_animation_strip.png (the first sequence).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

from PIL import Image

from imposter.config import NOT_GIVEN
from imposter.engine import ImPoster
from imposter.fileio import save_image
from imposter.flags import quiet_libraries
from imposter.images import image_grid
from imposter.pose_detection import detect_keypoints, detector_names
from imposter.run import ADAPTER_DIR
from imposter.settings import resolve
from imposter.toyworld.figures import figure_mask, mask_iou
from imposter.toyworld.sequences import ToySequence, make_sequences, score_sequence, write_sequence
from imposter.video.animate import (
    AnimateConfig,
    prepare_sequence,
    run_animate,
    sequence_method,
)
from imposter.video.writers import write_gif

DOCS = Path(__file__).resolve().parent.parent / "docs"
ZOOM = 2  # the docs pictures show the 64 px toy frames at twice their size


def animate_sequence(
    engine: ImPoster, sequence: ToySequence, folder: Path, args: argparse.Namespace
) -> tuple[list[Image.Image], AnimateConfig, float]:
    """Write the sequence's inputs, run animate on them; return the frames, the config and the seconds."""
    source, driving, pose_maps = write_sequence(sequence, folder / "inputs")
    sampling = {
        "steps": args.steps,
        "k": args.k,
        "amp_scale": args.amp_scale,
        "phase_scale": args.phase_scale,
    }
    config = AnimateConfig(
        model=args.model,
        source=str(source),
        driving=str(driving),
        source_prompt=sequence.source_prompt,
        driving_prompt=sequence.driving_prompt,
        method=args.method,
        driving_pose_maps=str(pose_maps) if args.method == "pose-control" else None,  # its shipped ControlNet
        **(  # the frames' own joints (a perfect OpenPose), written beside them; or a detector's
            {
                "source_keypoints": str(source.parent / "source_keypoints.json"),
                "driving_keypoints": str(source.parent / "driving_keypoints"),
            }
            if args.method == "imposter" and not args.detect_pose
            else {}
        ),
        detect_pose=args.detect_pose,
        seed=args.seed,
        finetune={"steps": args.train_steps},
        sampling={name: value for name, value in sampling.items() if value is not NOT_GIVEN},
    )
    start = time.perf_counter()
    result = run_animate(config, folder / "run", engine, overwrite=True, progress=False, log=lambda _: None)
    seconds = time.perf_counter() - start
    return [Image.open(path).convert("RGB") for path in result.frames], config, seconds


def independent_frames(
    engine: ImPoster, sequence: ToySequence, config: AnimateConfig, folder: Path
) -> list[Image.Image]:
    """The same frames from the run's adapter, but each from its own seed (seed + t) instead of one."""
    method = sequence_method(config.method)
    source_keypoints, driving_keypoints = None, None
    if config.driving_keypoints:
        source_keypoints, driving_keypoints = sequence.source_keypoints, sequence.driving_keypoints_frames
    elif config.detect_pose and config.method == "imposter":  # as the run found them
        source_keypoints = detect_keypoints(sequence.source_image, config.detect_pose, "source")[0]
        driving_keypoints = [
            detect_keypoints(frame, config.detect_pose, "driving")[0] for frame in sequence.driving_frames
        ]
    prepared = prepare_sequence(
        engine,
        sequence.source_image,
        sequence.source_prompt,
        sequence.driving_frames,
        sequence.driving_prompt,
        pose_maps=sequence.driving_pose_maps if config.driving_pose_maps else None,
        source_keypoints=source_keypoints,
        driving_keypoints=driving_keypoints,
    )
    learned = engine.load_personalization(folder / "run" / ADAPTER_DIR, method)
    frames = range(len(prepared.frames))
    seeds = [config.seed + t for t in frames]
    sampling = resolve(method, engine.family, sampling=config.sampling)[1]
    pair = prepared.frames_pair(frames)  # each frame guided by its own driving frame
    batches = engine.sample_batches(pair, learned, seeds, sampling, method, progress=False)
    return [image for batch in batches for _, image in batch]


def mean_score(frames: list[dict], key: str) -> float:
    """Mean of ``key`` over the frames that have it (NaN if none)."""
    values = [scores[key] for scores in frames if key in scores]
    return statistics.fmean(values) if values else math.nan


def markdown(header: list[str], rows: list[list]) -> str:
    """A markdown table; floats to 3 decimals, NaN as "-"."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def per_frame_table(
    shared: list[list[dict]], independent: list[list[dict]], sources: list[list[float]]
) -> str:
    """One row per frame index, every score averaged over the sequences."""
    header = ["frame", "pose IoU", "source IoU", "identity", "leakage", "consistency"]
    header += ["pose IoU (indep.)", "identity (indep.)", "consistency (indep.)"]
    rows = []
    for t in range(len(shared[0])):
        at_t, indep_t = [s[t] for s in shared], [s[t] for s in independent]
        row = [t, mean_score(at_t, "pose_iou"), statistics.fmean(src[t] for src in sources)]
        row += [mean_score(at_t, k) for k in ("identity", "leakage", "consistency")]
        rows.append(row + [mean_score(indep_t, k) for k in ("pose_iou", "identity", "consistency")])
    return markdown(header, rows)


def per_sequence_table(
    sequences: list[ToySequence],
    shared: list[list[dict]],
    independent: list[list[dict]],
    seconds: list[float],
) -> str:
    """One row per sequence (the means of its frames), then the mean of the sequences."""
    header = ["sequence", "source <- action (driver)", "pose IoU", "identity", "leakage", "consistency"]
    header += ["consistency (indep.)", "seconds"]
    rows = []
    for sequence, frames, indep, took in zip(sequences, shared, independent, seconds, strict=True):
        cast = f"{sequence.source_subject} <- {sequence.action} ({sequence.driving_subject})"
        row = [mean_score(frames, k) for k in ("pose_iou", "identity", "leakage", "consistency")]
        rows.append([sequence.pair_id, cast, *row, mean_score(indep, "consistency"), round(took)])
    means = [statistics.fmean(column) for column in list(zip(*rows, strict=True))[2:]]
    return markdown(header, [*rows, ["**mean**", "", *means[:-1], round(means[-1])]])


def zoom(image: Image.Image) -> Image.Image:
    return image.resize((image.width * ZOOM, image.height * ZOOM), Image.NEAREST)


def write_docs(
    sequences: list[ToySequence], generated: list[list[Image.Image]], gif: Path, strip: Path
) -> None:
    """The docs GIF (a row per sequence: driving | animate | ground truth) and the first sequence's strip."""
    labels = ["driving", "imposter animate", "ground truth"]
    pictures = [
        image_grid(
            [
                [zoom(s.driving_frames[t]), zoom(g[t]), zoom(s.target_frames[t])]
                for s, g in zip(sequences, generated, strict=True)
            ],
            labels,
        )
        for t in range(len(generated[0]))
    ]
    write_gif(pictures, gif, fps=4)
    first, frames = sequences[0], generated[0]
    blank = Image.new("RGB", first.source_image.size, (255, 255, 255))
    rows = [
        [blank, *first.driving_frames],
        [first.source_image, *frames],
        [blank, *first.target_frames],
    ]
    save_image(
        image_grid(
            [[zoom(image) for image in row] for row in rows],
            ["source", *(f"t={t}" for t in range(len(frames)))],
        ),
        strip,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="toy", help="default: the bundled toy model")
    parser.add_argument("--method", default="imposter-guided")
    parser.add_argument("--sequences", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="casting, poses and the initial noise")
    parser.add_argument("--train-steps", type=int, default=200, help="fine-tuning steps (default 200)")
    parser.add_argument("--steps", type=int, default=NOT_GIVEN, help="DDIM steps (default 50)")
    parser.add_argument("--k", type=int, default=NOT_GIVEN, help="steps with the driving caption (default 5)")
    parser.add_argument("--amp-scale", type=float, default=NOT_GIVEN, help="s_a (default: the library's)")
    parser.add_argument("--phase-scale", type=float, default=NOT_GIVEN, help="s_p (default: the library's)")
    parser.add_argument(
        "--detect-pose", choices=detector_names(), default=None, help="imposter: detect the joints"
    )
    parser.add_argument("--work", type=Path, default=Path("runs/animate_toy"), help="inputs and run folders")
    parser.add_argument("--docs", type=Path, default=DOCS, help="folder for toy_animation.gif/_strip.png")
    parser.add_argument("--no-docs", action="store_true", help="do not write the docs pictures")
    args = parser.parse_args()
    quiet_libraries()

    engine = ImPoster.from_pretrained(args.model, device="cpu")
    sequences = make_sequences(args.sequences, args.frames, args.seed)
    generated, scores, seconds, independent, sources = [], [], [], [], []
    for sequence in sequences:
        folder = args.work / sequence.pair_id
        frames, config, took = animate_sequence(engine, sequence, folder, args)
        generated.append(frames)
        scores.append(score_sequence(frames, sequence))
        seconds.append(took)
        source_mask = figure_mask(sequence.source_image)
        sources.append([mask_iou(source_mask, figure_mask(target)) for target in sequence.target_frames])
        independent.append(score_sequence(independent_frames(engine, sequence, config, folder), sequence))
        print(f"{sequence.pair_id}: {took:.0f} s", flush=True)

    print(f"\n### Per frame (mean of {len(sequences)} sequences of {args.frames} frames)\n")
    print(per_frame_table(scores, independent, sources))
    print("\n### Per sequence\n")
    print(per_sequence_table(sequences, scores, independent, seconds))
    if not args.no_docs:
        gif, strip = args.docs / "toy_animation.gif", args.docs / "toy_animation_strip.png"
        write_docs(sequences, generated, gif, strip)
        print(f"\nwrote {gif} ({gif.stat().st_size // 1024} KB) and {strip}")


if __name__ == "__main__":
    main()
