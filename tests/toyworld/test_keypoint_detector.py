"""The toy world's keypoint detector (``--detect-pose toy``): the bundled one finds the figures' joints of
pairs it never saw, the trainer resumes exactly, and imposter runs on toy pictures with no
keypoint files."""

import json
import math
from dataclasses import replace

import numpy as np
import torch
from resumes import assert_resumes_exactly

from imposter.cli import main
from imposter.pose_detection import detect_keypoints, detector_names
from imposter.retarget import JOINTS
from imposter.toyworld import keypoint_detector
from imposter.toyworld.keypoint_detector import (
    ToyKeypointConfig,
    detect_toy_keypoints,
    fit_keypoint_detector,
    train_keypoint_detector,
)
from imposter.toyworld.pairs import make_pairs

TINY = ToyKeypointConfig(steps=4, batch=2, checkpoint_every=2, width=8)


def test_the_bundled_detector_finds_the_joints_of_evaluation_figures():
    """Table pairs' images (instances pretraining never rendered, held-out actions): on 24 pairs the mean
    error is 0.35 px (README); here 4 pairs must stay under 0.7 px, and no joint off by a limb (5 px)."""
    errors = []
    for pair in make_pairs(4, 0, "table"):
        for image, truth in (
            (pair.source_image, pair.source_keypoints),
            (pair.driving_image, pair.driving_keypoints),
        ):
            found, used = detect_keypoints(image, "toy", "source")
            assert used == "toy"
            errors += [float(np.hypot(*(found[name] - np.asarray(truth[name])))) for name in JOINTS]
    assert np.mean(errors) < 0.7 and max(errors) < 5.0


def test_toy_is_a_detect_pose_choice():
    assert "toy" in detector_names()


def _run(folder, hook=None):
    """One training run into ``folder``; ``hook`` is called before every step's batch (the kill)."""
    original = keypoint_detector.training_batch
    if hook is not None:
        keypoint_detector.training_batch = lambda *args: (hook(None, args), original(*args))[1]
    try:
        model, losses = fit_keypoint_detector(TINY, lambda _: None, False, checkpoints=folder)
    finally:
        keypoint_detector.training_batch = original
    return losses, model.state_dict()


def test_a_killed_detector_run_resumes_to_the_same_weights(tmp_path):
    assert_resumes_exactly(_run, tmp_path)


def test_the_command_writes_the_detector_beside_a_model_and_detection_reads_it(tmp_path):
    model = tmp_path / "toy"
    model.mkdir()
    argv = ["toy", "keypoints", "--model", str(model), "--steps", "2", "--batch", "2", "--quiet"]
    assert main(argv) == 0
    record = json.loads((model / "keypoints" / "training.json").read_text())
    assert record["config"]["steps"] == 2 and record["command"].startswith("imposter ")
    assert not (model / "keypoints.work").exists()
    train_keypoint_detector(model, TINY, log=lambda _: None, progress=False)  # a retrain replaces it
    assert json.loads((model / "keypoints" / "training.json").read_text())["config"]["width"] == 8
    image = make_pairs(1, 0, "tune")[0].source_image.resize((128, 128))  # read at 64 px, mapped back
    found = detect_toy_keypoints(image, model / "keypoints")  # a width-8 detector, as its record says
    assert set(found) == set(JOINTS) and all(0 <= v <= 128 for xy in found.values() for v in xy)


def test_imposter_retarget_runs_on_toy_pictures_with_no_keypoint_files(tiny_model, tmp_path, capsys):
    pair = make_pairs(1, 0, "tune")[0]
    pair.source_image.save(tmp_path / "source.png")
    pair.driving_image.save(tmp_path / "driving.png")
    args = [
        "generate", "--model", str(tiny_model), "--method", "imposter", "--detect-pose", "toy",
        "--source", str(tmp_path / "source.png"), "--source-prompt", pair.source_prompt,
        "--driving", str(tmp_path / "driving.png"), "--driving-prompt", pair.driving_prompt,
        "--steps", "10", "--height", "64", "--width", "64", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr()
    assert "source keypoints: found by toy" in said.out + said.err
    run = json.loads((tmp_path / "run" / "config.json").read_text())["run"]
    assert run["detect_pose"] == "toy"


def test_the_keypoints_command_writes_openpose_json_and_a_skeleton_to_check(tmp_path):
    from PIL import Image

    from imposter.retarget import read_keypoints

    pair = make_pairs(1, 0, "table")[0]
    pair.driving_image.save(tmp_path / "pig.png")
    assert (
        main(["keypoints", str(tmp_path / "pig.png"), "--detect-pose", "toy", "--out", str(tmp_path / "out")])
        == 0
    )
    read = read_keypoints(tmp_path / "out" / "pig_keypoints.json")  # what --driving-keypoints reads
    errors = [np.hypot(*(read[name] - np.asarray(pair.driving_keypoints[name]))) for name in JOINTS]
    assert np.mean(errors) < 0.7
    with Image.open(tmp_path / "out" / "pig_skeleton.png") as preview:
        assert preview.size == (512, 512)  # the 64 px picture drawn 8x


def test_the_default_method_on_the_bundled_model_finds_the_joints_itself(tmp_path, capsys):
    """imposter generate with no --method and no keypoints: the toy model's own detector, recorded."""
    pair = make_pairs(1, 0, "tune")[0]
    pair.source_image.save(tmp_path / "source.png")
    pair.driving_image.save(tmp_path / "driving.png")
    args = [
        "generate", "--source", str(tmp_path / "source.png"), "--source-prompt", pair.source_prompt,
        "--driving", str(tmp_path / "driving.png"), "--driving-prompt", pair.driving_prompt,
        "--steps", "10", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr()
    assert "driving keypoints: found by toy" in said.out + said.err
    run = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run["run"]["method"] == "imposter" and run["run"]["detect_pose"] == "toy"
    assert (
        run["run"]["sampling"]["driving_strength"] == 0.1
        and run["personalization"]["finetune"]["kind"] == "none"
    )


def test_the_detector_trains_in_bf16_with_float32_weights():
    model, losses = fit_keypoint_detector(replace(TINY, precision="bf16"), lambda _: None, False)
    assert losses and all(map(math.isfinite, losses))
    assert all(p.dtype == torch.float32 for p in model.parameters())
