"""The page: two tabs, Generate and Animate, wired to the handlers in ``handlers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from ..engine import ImPoster
from ..fileio import save_image, write_text
from ..methods import METHOD_NAMES, get_method
from ..pose_detection import detector_names
from ..settings import resolve
from ..video.animate import SEQUENCE_METHODS
from . import fields as f
from . import handlers as h

DEVICE_QUEUE = "device"  # generate and animate share one slot: one job at a time on the model's device
# A run closes the toasts of the runs before it: an earlier refusal must not stand over this run's outcome
# (Gradio keeps an error toast for 10 s, and has no server-side way to close one).
CLOSE_TOASTS = (
    "() => document.querySelectorAll('[data-testid=toast-close]').forEach((close) => close.click())"
)
EXAMPLE_PAIRS = 4
ABOUT = (
    "# ImPoster\n"
    "Make the subject of the **source** image perform the action of the **driving** image "
    "([arXiv 2409.15650](https://arxiv.org/abs/2409.15650)). The default method, imposter, moves the source's "
    "own body into the driving pose by both figures' joints (uploaded, or detected) and redraws it: nothing to "
    "fine-tune. The fine-tuning methods (imposter-guided, the paper's) fine-tune on the first run; changing only "
    "K, the scales, the seeds or the method then reuses that fine-tune."
)


def toy_examples(folder: Path, count: int = EXAMPLE_PAIRS) -> list[list[str]]:
    """Toy-world pairs written under ``folder``: source, its caption, driving, its caption, ground truth, and
    both figures' joints as OpenPose JSON (for imposter)."""
    from ..retarget import to_openpose
    from ..toyworld.pairs import make_pairs

    rows = []
    for pair in make_pairs(count, seed=0):
        paths = {
            role: str(save_image(image, folder / f"{pair.pair_id}-{role}.png"))
            for role, image in (
                ("source", pair.source_image),
                ("driving", pair.driving_image),
                ("truth", pair.target_image),
            )
        }
        for role, points in (("source", pair.source_keypoints), ("driving", pair.driving_keypoints)):
            path = folder / f"{pair.pair_id}-{role}-keypoints.json"
            paths[f"{role} keypoints"] = str(write_text(path, json.dumps(to_openpose(points)) + "\n"))
        rows.append(
            [
                paths["source"], pair.source_prompt, paths["driving"], pair.driving_prompt, paths["truth"],
                paths["source keypoints"], paths["driving keypoints"],
            ]
        )  # fmt: skip
    return rows


def keypoint_fields(frames: bool = False) -> tuple[gr.File, gr.File, gr.Dropdown]:
    """What imposter reads: the OpenPose JSON uploads, the source's and the driving image's (the toy
    examples fill them) or, for ``frames``, one per driving frame in the frames' order; and the detector of
    those not uploaded (``--detect-pose``: an optional package, weights downloaded on first use)."""
    driving = (f.DRIVING_FRAMES_KEYPOINTS, "multiple") if frames else (f.DRIVING_KEYPOINTS, "single")
    with gr.Accordion("Body keypoints (imposter)", open=False):
        with gr.Row():
            files = tuple(
                gr.File(label=label, file_count=count, file_types=[".json"], type="filepath", height=90)
                for label, count in ((f.SOURCE_KEYPOINTS, "single"), driving)
            )
        detect = gr.Dropdown(
            [f.NO_DETECTOR, *detector_names()],
            value=f.NO_DETECTOR,
            label=f.DETECT_POSE,
            info="people: openpose, rtmpose; animals: animal; auto: rtmpose, else animal (pip install "
            '"imposter-diffusion[pose]")',
        )
    return (*files, detect)


def tuning_fields(methods: list[str], seeds_label: str = f.SEEDS) -> dict[str, gr.components.Component]:
    """The Method dropdown and the "Advanced" accordion's fields, with the default method's defaults (the
    settings it fixes shown locked, as ``wire_method`` does when a method is chosen)."""
    method = get_method(methods[0])
    finetune, sampling = resolve(method, None)
    fields = {f.METHOD: gr.Dropdown(list(methods), value=methods[0], label=f.METHOD)}

    def number(field: str, label: str, **kwargs: Any) -> gr.Number:
        value = getattr(sampling, field)
        interactive = field not in method.fixed_sampling
        return gr.Number(0 if value is None else value, label=label, interactive=interactive, **kwargs)

    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            fields[f.FINETUNE_STEPS] = gr.Number(
                finetune.steps, label=f.FINETUNE_STEPS, precision=0, minimum=0
            )
            fields[f.STEPS] = number("steps", f.STEPS, precision=0, minimum=1)
            fields[f.K] = number("k", f.K, precision=0, minimum=0)
        with gr.Row():
            fields[f.AMP_SCALE] = number("amp_scale", f.AMP_SCALE, minimum=0)
            fields[f.PHASE_SCALE] = number("phase_scale", f.PHASE_SCALE, minimum=0)
            fields[f.GUIDANCE_SCALE] = number("guidance_scale", f.GUIDANCE_SCALE, minimum=0)
            fields[f.DRIVING_STRENGTH] = number("driving_strength", f.DRIVING_STRENGTH, minimum=0, maximum=1)
        if seeds_label == f.SEEDS:
            fields[f.SEEDS] = gr.Textbox("0 1 2", label=f.SEEDS, placeholder="one image per seed, e.g. 0 1 2")
        else:
            fields[seeds_label] = gr.Number(0, label=seeds_label, precision=0)
    return fields


def caption_fields() -> tuple[gr.Textbox, gr.Textbox, gr.Textbox]:
    """Source, driving and target captions; the target is composed as the other two are typed."""
    source = gr.Textbox(label=f.SOURCE_CAPTION, placeholder="a dog")
    driving = gr.Textbox(label=f.DRIVING_CAPTION, placeholder="a cat drinking water from a mug")
    target = gr.Textbox(
        label=f.TARGET_CAPTION,
        placeholder="composed from the captions; edit it if you like",
        interactive=True,
    )
    for box in (source, driving):
        box.change(h.App.compose, [source, driving], target, queue=False, show_progress="hidden")
    return source, driving, target


def wire_method(fields: dict[str, gr.components.Component]) -> None:
    """Lock the settings a method fixes (Baseline++: K = 0, no guidance) when it is chosen."""
    previous = gr.State(fields[f.METHOD].value)
    fields[f.METHOD].change(
        h.App.method_changed,
        [fields[f.METHOD], previous],
        [previous, *(fields[label] for label in f.SAMPLING_FIELDS)],
        queue=False,
        show_progress="hidden",
    )


def upload(label: str, elem_id: str) -> gr.Image:
    """An image upload handed to the handlers as a file path, in its own mode (the library converts it)."""
    return gr.Image(type="filepath", image_mode=None, label=label, height=256, elem_id=elem_id)


def downloads_box() -> gr.File:
    return gr.File(label="Downloads: adapter (zip) and config.json", file_count="multiple", height=120)


def run_button(button: gr.Button, handler, inputs: list, outputs: list) -> None:
    """Run ``handler`` on a click, one job at a time on the device, after closing the toasts already shown."""
    button.click(None, js=CLOSE_TOASTS, queue=False)
    button.click(handler, inputs, outputs, concurrency_limit=1, concurrency_id=DEVICE_QUEUE)


def generate_tab(app: h.App, examples: list[list[str]] | None) -> None:
    """Source and driving image, captions and settings; results, grid, downloads and toy examples."""
    with gr.Row():
        with gr.Column():
            source = upload(f.SOURCE_IMAGE, "source-image")
        with gr.Column():
            driving = upload(f.DRIVING_IMAGE, "driving-image")
        with gr.Column():
            captions = caption_fields()
            fields = tuning_fields(h.family_methods(app.engine, METHOD_NAMES))
            keypoints = keypoint_fields()
            button = gr.Button("Generate", variant="primary")
    status = gr.Markdown(elem_id="status")
    with gr.Row():
        with gr.Column(scale=3):
            results = gr.Gallery(
                label="Results", columns=4, height=320, object_fit="contain", elem_id="results"
            )
            grid = gr.Image(label="Grid: source | driving | one result per seed", type="filepath")
        with gr.Column(scale=1):
            truth = gr.Image(label="Ground truth (toy world)", visible=bool(examples), height=200)
            downloads = downloads_box()
    if examples:
        gr.Examples(
            examples,
            [source, captions[0], driving, captions[1], truth, *keypoints[:2]],
            label="Toy-world pairs (with the ground truth the result should match)",
        )
        for image, points in zip((source, driving), keypoints[:2], strict=True):  # a user's own image has no
            image.upload(lambda: (None, None), None, [truth, points], queue=False)  # truth, nor those joints
    wire_method(fields)
    run_button(
        button,
        app.generate,
        [source, captions[0], driving, captions[1], captions[2], *fields.values(), *keypoints],
        [results, grid, downloads, status],
    )


def animate_tab(app: h.App) -> None:
    """A source image and a driving video or frames; the GIF, the strip and downloads."""
    with gr.Row():
        with gr.Column():
            source = upload(f.SOURCE_IMAGE, "animate-source-image")
        with gr.Column():
            driving = gr.File(label=f.DRIVING_FRAMES, file_count="multiple", file_types=["image", "video"])
        with gr.Column():
            captions = caption_fields()
            fields = tuning_fields(h.family_methods(app.engine, SEQUENCE_METHODS), seeds_label=f.SEED)
            with gr.Row():
                every = gr.Number(1, label=f.EVERY, precision=0, minimum=1)
                max_frames = gr.Number(0, label=f.MAX_FRAMES, precision=0, minimum=0)
            keypoints = keypoint_fields(frames=True)
            button = gr.Button("Animate", variant="primary")
    status = gr.Markdown(elem_id="animate-status")
    with gr.Row():
        animation = gr.Image(label="Animation", type="filepath")
        strip = gr.Image(label="Driving frames and generated frames", type="filepath")
        downloads = downloads_box()
    wire_method(fields)
    run_button(
        button,
        app.animate,
        [
            source,
            captions[0],
            driving,
            captions[1],
            captions[2],
            *fields.values(),
            every,
            max_frames,
            *keypoints,
        ],
        [animation, strip, downloads, status],
    )


def build(app: h.App, examples: list[list[str]] | None = None) -> gr.Blocks:
    """The page for ``app``; ``examples`` are rows from ``toy_examples`` (with their ground truth)."""
    with gr.Blocks(title="ImPoster") as page:
        gr.Markdown(ABOUT)
        with gr.Tab("Generate", id="generate", elem_id="generate-tab"):
            generate_tab(app, examples)
        with gr.Tab("Animate", id="animate", elem_id="animate-tab"):
            animate_tab(app)
    return page.queue(default_concurrency_limit=1)


def launch(
    model: str,
    out: str | Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    device: str | None = None,
    dtype: str | None = None,
) -> None:
    """Load ``model``, serve the page until interrupted, and print its address."""
    out = Path(out).resolve()
    engine = ImPoster.from_pretrained(model, device, dtype)
    examples = toy_examples(out / "examples") if model == "toy" else None
    page = build(h.App(engine, out), examples)
    _, local_url, share_url = page.launch(
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=[str(out)],
        prevent_thread_lock=True,
        ssr_mode=False,
        quiet=True,
    )
    print(
        f"imposter app: {share_url or local_url} (model {model}; outputs in {out}); Ctrl+C stops it",
        flush=True,
    )
    page.block_thread()
