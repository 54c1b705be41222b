"""The app's handlers on the tiny pipeline: composed prompt, personalize once, errors that name the field."""

import json
import zipfile

import gradio as gr
import pytest

from imposter.app.handlers import App
from imposter.engine import ImPoster
from imposter.testing import random_image

# method, fine-tuning steps, denoising steps, K, amplitude, phase, guidance scale, driving strength (0: off)
FAST = ["imposter-guided", 2, 3, 1, 0.05, 0.3, 7.5, 0]


@pytest.fixture
def finetunes(monkeypatch):
    """The pairs every fine-tune of the engine learned from (one entry per fine-tune)."""
    calls = []
    real = ImPoster.learn

    def counting(self, pair, *args, **kwargs):
        calls.append((pair.source_prompt, pair.driving_prompt))
        return real(self, pair, *args, **kwargs)

    monkeypatch.setattr(ImPoster, "learn", counting)
    return calls


@pytest.fixture
def app(engine, tmp_path):
    return App(engine, tmp_path / "app")


def generate(app, pair_files, source_caption="a dog", settings=FAST, seeds="0 1", **changes):
    values = dict(
        source=str(pair_files["source"]),
        source_caption=source_caption,
        driving=str(pair_files["driving"]),
        driving_caption="a cat jumping",
        target_caption="",
    )
    values.update(changes)
    return app.generate(*values.values(), *settings, seeds)


def test_compose_fills_the_target_caption_and_waits_for_an_action():
    assert App.compose("a dog", "a cat drinking water from a mug") == "a dog drinking water from a mug"
    unchanged = App.compose("a dog", "a cat")  # no action yet: the target box keeps what it holds
    assert "value" not in unchanged


def test_generate_writes_the_run_and_reuses_the_fine_tune(app, pair_files, finetunes, tmp_path):
    gallery, grid, downloads, status = generate(app, pair_files)
    assert [caption for _, caption in gallery] == ["seed 0", "seed 1"]
    assert status.startswith("**Fine-tuned**") and "a dog jumping" in status
    assert len(finetunes) == 1
    archive, config = downloads
    assert "personalization.json" in zipfile.ZipFile(archive).namelist()
    assert json.loads(open(config).read())["run"]["target_prompt"] == "a dog jumping"
    assert grid.endswith("grid.png")

    # only sampling settings change (K, scales, seeds, a method of the same family): no fine-tuning
    _, _, _, status = generate(app, pair_files, settings=["baseline++", 2, 3, 0, 0.0, 0.0, 5.0, 0], seeds="3")
    assert status.startswith("**Reused**")
    # a new session on the same output folder finds the fine-tune on disk
    gallery, _, _, status = generate(App(app.engine, app.out), pair_files, seeds="4")
    assert status.startswith("**Reused**") and len(gallery) == 1
    assert len(finetunes) == 1

    # a fine-tuning setting, or a caption, changes what is learned
    generate(app, pair_files, settings=["imposter-guided", 3, *FAST[2:]])
    generate(app, pair_files, source_caption="a red dog")
    assert finetunes[1:] == [("a dog", "a cat jumping"), ("a red dog", "a cat jumping")]
    assert [path.name for path in tmp_path.iterdir()] == ["app"]  # nothing written outside the app's folder


def retarget_fields(source, source_caption, driving, driving_caption) -> list:
    """The Generate tab's fields up to the seeds for imposter: no fine-tune, 10 steps, strength 0.1."""
    return [
        source,
        source_caption,
        driving,
        driving_caption,
        "",
        "imposter",
        0,
        10,
        0,
        0,
        0,
        7.5,
        0.1,
    ]


def test_imposter_retarget_reads_the_keypoint_uploads(app, tmp_path):
    from imposter.app.layout import toy_examples

    source, source_caption, driving, driving_caption, _, source_points, driving_points = toy_examples(
        tmp_path, count=1
    )[0]
    values = retarget_fields(source, source_caption, driving, driving_caption)
    with pytest.raises(gr.Error, match="needs the body keypoints of both images: Source keypoints"):
        app.generate(*values, "0")  # no keypoints: the page names its own fields
    gallery, _, _, status = app.generate(*values, "0", source_points, driving_points)
    assert len(gallery) == 1 and status.startswith("**Nothing to fine-tune**")


def test_a_reference_method_that_learns_nothing_runs_too(app, pair_files):
    gallery, _, downloads, status = generate(app, pair_files, settings=["copy-source", *FAST[1:]], seeds="0")
    assert len(gallery) == 1 and downloads[-1].endswith("config.json")
    assert all(path.startswith(str(app.out)) for path in downloads)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(source_caption="  "), "Source caption is empty"),
        (dict(driving_caption="a cat"), "cannot find the action in the driving caption 'a cat'"),
        (dict(source=None), "Source image is empty"),
        (
            dict(settings=["imposter-guided", 2, 3, 4, 0.05, 0.3, 7.5, 0]),
            "K 4 must be between 0 and the number of steps (3)",
        ),
        (dict(settings=["imposter-guided", -1, *FAST[2:]]), "Fine-tuning steps must be >= 0"),
        (dict(settings=["imposter-guided", 2, 3, 1, -0.1, 0.3, 7.5, 0]), "got Amplitude scale -0.1"),
        (dict(settings=["imposter-guided", 2, None, 1, 0.05, 0.3, 7.5, 0]), "Denoising steps is empty"),
        (dict(seeds="0 zero"), "Seeds must be whole numbers"),
    ],
)
def test_bad_input_is_a_one_line_page_error_naming_the_field(app, pair_files, finetunes, changes, message):
    with pytest.raises(gr.Error) as raised:
        generate(app, pair_files, **changes)
    assert message in raised.value.message
    assert "\n" not in raised.value.message and "--" not in raised.value.message
    assert finetunes == []


def test_an_error_after_fine_tuning_keeps_the_fine_tune(app, pair_files, finetunes):
    with pytest.raises(gr.Error, match=r"Seeds has duplicates: \[1, 1\]"):
        generate(app, pair_files, seeds="1 1")
    _, _, _, status = generate(app, pair_files, seeds="1")
    assert status.startswith("**Reused**") and len(finetunes) == 1


def test_a_tiny_or_unreadable_upload_names_the_image(app, pair_files, tmp_path):
    random_image(tmp_path / "small.png", size=(10, 10))
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(gr.Error, match=r"Source image small.png is 10x10"):
        generate(app, pair_files, source=str(tmp_path / "small.png"))
    with pytest.raises(gr.Error, match=r"Driving file text.png is not a readable image"):
        generate(app, pair_files, driving=str(tmp_path / "text.png"))


def test_choosing_baseline_locks_what_defines_it_and_imposter_gets_its_defaults_back():
    name, steps, k, amp, phase, guidance, strength = App.method_changed("baseline++", "imposter-guided")
    assert name == "baseline++"
    assert (k["value"], amp["value"], phase["value"]) == (0, 0.0, 0.0)
    assert not k["interactive"] and steps["interactive"] and "value" not in steps  # the user's steps stay
    _, _, k, amp, _, _, _ = App.method_changed("imposter-guided", "baseline++")
    assert (k["value"], amp["value"], k["interactive"]) == (5, 0.03, True)
    _, _, k, amp, phase, _, _ = App.method_changed(
        "imposter-paper", "imposter-guided"
    )  # its own default scales
    assert (phase["value"], phase["interactive"], k["interactive"]) == (0.1, True, True)
    _, _, _, _, phase, _, _ = App.method_changed("imposter-guided", "imposter-paper")
    assert phase["value"] == 0.2
    *_, strength = App.method_changed("imposter-sdedit", "imposter-guided")  # img2img from the driving image
    assert (strength["value"], strength["interactive"]) == (0.6, True)
    *_, strength = App.method_changed("imposter-guided", "imposter-sdedit")  # off again, shown as 0
    assert strength["value"] == 0


def test_a_driving_strength_of_zero_is_off_and_a_strength_reaches_the_run():
    from imposter.app.fields import page_settings

    assert page_settings(*FAST[:2], *FAST[2:]).sampling["driving_strength"] is None
    assert page_settings("imposter-sdedit", 2, 3, 0, 0.03, 0.0, 7.5, 0.5).sampling["driving_strength"] == 0.5


def test_animate_several_frames_then_reuse(app, pair_files, finetunes, tmp_path):
    frames = [tmp_path / f"frame{i}.png" for i in range(2)]
    for i, path in enumerate(frames):
        random_image(path, seed=20 + i)
    inputs = [str(pair_files["source"]), "a dog", [str(path) for path in frames], "a cat jumping", ""]
    gif, strip, downloads, status = app.animate(*inputs, *FAST, 0, 1, None)
    assert (
        gif.endswith("animation.gif") and strip.endswith("strip.png") and status.startswith("**Fine-tuned**")
    )
    _, _, _, status = app.animate(*inputs, *FAST[:3], 0, 0.0, 0.0, 7.5, 0, 1, 1, None)
    assert status.startswith("**Reused**") and len(finetunes) == 1
    with pytest.raises(gr.Error, match="Driving video or frames is empty"):
        app.animate(*inputs[:2], [], *inputs[3:], *FAST, 0, 1, None)


def test_animate_with_imposter_retarget_reads_the_frames_keypoints_in_upload_order(app, tmp_path):
    from imposter.retarget import to_openpose
    from imposter.toyworld.render import body_keypoints, render
    from imposter.toyworld.world import ACTION_POSES, STANDING, get_class

    source, driver = get_class("robot").reference, get_class("duck").reference
    render(source, STANDING).save(tmp_path / "source.png")
    (tmp_path / "source.json").write_text(json.dumps(to_openpose(body_keypoints(source, STANDING))))
    frames, points = [], []
    for index, pose in enumerate((STANDING, ACTION_POSES["kicking"])):
        render(driver, pose).save(tmp_path / f"frame{index}.png")
        (tmp_path / f"z{index}.json").write_text(json.dumps(to_openpose(body_keypoints(driver, pose))))
        frames.append(str(tmp_path / f"frame{index}.png"))
        points.append(str(tmp_path / f"z{index}.json"))
    inputs = [str(tmp_path / "source.png"), "a robot", frames, "a duck kicking", ""]
    settings = ["imposter", 0, 10, 0, 0.0, 0.0, 7.5, 0.1, 0, 1, None]
    with pytest.raises(
        gr.Error, match="Source keypoints \\(OpenPose JSON\\) FILE and Driving frames' keypoints"
    ):
        app.animate(*inputs, *settings)
    with pytest.raises(gr.Error, match="1 keypoint file\\(s\\) for 2 driving frame\\(s\\)"):
        app.animate(*inputs, *settings, str(tmp_path / "source.json"), points[:1])
    gif, _, _, status = app.animate(*inputs, *settings, str(tmp_path / "source.json"), points)
    assert gif.endswith("animation.gif") and status.startswith("**Nothing to fine-tune**")


def test_imposter_retarget_detects_what_was_not_uploaded(app, tmp_path, monkeypatch):
    """The "Detect" dropdown reaches the run: with "animal", both images' joints come from the detector (faked:
    rtmlib's weights cannot be downloaded here); with "no", the missing uploads are named."""
    import sys
    import types

    import numpy as np
    from PIL import Image

    from imposter.app.fields import NO_DETECTOR
    from imposter.app.layout import toy_examples
    from imposter.pose_detection import ANIMAL17
    from imposter.retarget import read_keypoints

    source, source_caption, driving, driving_caption, _, source_points, driving_points = toy_examples(
        tmp_path, count=1
    )[0]
    joints = {}  # image bytes (BGR) -> the figure's joints in AP-10K's order
    for image, points in ((source, source_points), (driving, driving_points)):
        bgr = np.asarray(Image.open(image).convert("RGB"))[:, :, ::-1].tobytes()
        named = read_keypoints(points)
        array = np.zeros((1, 17, 2))
        for index, name in ANIMAL17.items():
            array[0, index] = named[name]
        joints[bgr] = array
    seen = []

    class Animal:
        def __init__(self, **settings):
            pass

        def __call__(self, bgr):
            seen.append(bgr.shape)
            return joints[bgr.tobytes()], np.ones((1, 17))

    monkeypatch.setitem(sys.modules, "rtmlib", types.SimpleNamespace(Animal=Animal, Body=None))
    values = retarget_fields(source, source_caption, driving, driving_caption)
    with pytest.raises(gr.Error, match="Detect the keypoints not uploaded"):
        app.generate(*values, "0", None, None, NO_DETECTOR)
    gallery, _, _, status = app.generate(*values, "0", None, None, "animal")
    assert len(gallery) == 1 and status.startswith("**Nothing to fine-tune**") and len(seen) == 2
