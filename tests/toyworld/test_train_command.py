"""``imposter toy train`` chains the pose ControlNet and keypoint detector stages after the pipeline, and a rerun
carries on: the stages themselves are faked here (their own tests train them on tiny settings); what is tested
is the command's order."""

import json
import shutil
from dataclasses import asdict

import pytest

from imposter.cli import main
from imposter.toyworld import keypoint_detector, train, train_controlnet


class Ran(list):
    """The stages run, in order, and the precision each was given (None: a stage without one)."""

    def __init__(self):
        super().__init__()
        self.precisions = []


@pytest.fixture
def stages(monkeypatch):
    """The stages the command ran, in order (the ControlNet's with its steps)."""
    ran = Ran()

    def fake_pipeline(out, config, classifier=None, log=print, progress=True, command=None):
        ran.append("pipeline")
        ran.precisions.extend([config.precision, classifier.precision])
        log("pipeline trained")
        shutil.rmtree(out, ignore_errors=True)  # the real stage replaces the folder whole
        out.mkdir(parents=True)
        summary = {
            "train": asdict(config),
            "classifier": {"config": asdict(classifier)},
            "timings_s": {"unet": 1.0},
        }
        (out / "training.json").write_text(json.dumps(summary))
        return summary

    def fake_stage(label: str, folder_name: str, file_name: str, seconds: float):
        def stage(folder, config, log=print, progress=True, command=None):
            ran.append(f"{label} {config.steps}")
            ran.precisions.append(getattr(config, "precision", None))
            log(f"{label} trained")
            (folder / folder_name).mkdir(exist_ok=True)
            (folder / folder_name / file_name).write_text("{}")
            return {"seconds": seconds}

        return stage

    fake_controlnet = fake_stage("controlnet", "controlnet", "config.json", 2.0)
    fake_keypoints = fake_stage("keypoints", "keypoints", "detector.safetensors", 3.0)

    monkeypatch.setattr(train, "train_toy_model", fake_pipeline)
    monkeypatch.setattr(train_controlnet, "add_pose_controlnet", fake_controlnet)
    monkeypatch.setattr(keypoint_detector, "train_keypoint_detector", fake_keypoints)
    return ran


def run(out, *flags):
    main(["toy", "train", "--out", str(out), "--unet-steps", "7", "--quiet", *flags])


def test_the_add_on_stages_follow_the_pipeline_and_a_rerun_carries_on(stages, tmp_path):
    out = tmp_path / "model"
    run(out, "--controlnet-steps", "5", "--keypoint-steps", "3")
    assert stages == ["pipeline", "controlnet 5", "keypoints 3"]
    run(out, "--controlnet-steps", "5", "--keypoint-steps", "3")  # all done: nothing again
    assert stages == ["pipeline", "controlnet 5", "keypoints 3"]
    (out / "controlnet" / "config.json").unlink()  # as if killed during the ControlNet stage
    run(out, "--controlnet-steps", "5", "--keypoint-steps", "3")
    assert stages[3:] == ["controlnet 5"]  # the pipeline and the detector are kept
    log = (out / "train.log").read_text()
    assert log.index("pipeline trained") < log.index("controlnet trained") < log.index("keypoints trained")
    assert log.count("controlnet trained") == 2
    run(out, "--unet-steps", "8", "--controlnet-steps", "5", "--keypoint-steps", "3")  # other settings
    assert stages[-3:] == ["pipeline", "controlnet 5", "keypoints 3"]


def test_no_add_on_stage_with_zero_steps_and_the_default_is_the_shipped_recipe(stages, tmp_path):
    run(tmp_path / "a", "--controlnet-steps", "0", "--keypoint-steps", "0")
    run(tmp_path / "b")
    assert stages == [
        "pipeline",
        "pipeline",
        f"controlnet {train_controlnet.ToyControlNetConfig().steps}",
        f"keypoints {keypoint_detector.ToyKeypointConfig().steps}",
    ]


def test_the_flux_family_refuses_the_controlnet_stage(tmp_path, capsys):
    assert (
        main(["toy", "train", "--family", "flux", "--out", str(tmp_path / "f"), "--controlnet-steps", "5"])
        == 2
    )
    assert "--controlnet-steps" in capsys.readouterr().err and not (tmp_path / "f").exists()


def test_precision_reaches_every_convolutional_stage_and_bf16_is_the_default(stages, tmp_path):
    from imposter.cli import build_parser
    from imposter.toyworld.steps import PRECISIONS

    # the VAE's, the classifier's, the ControlNet's (none), the detector's
    run(tmp_path / "a", "--precision", "fp32")
    assert stages.precisions == ["fp32", "fp32", None, "fp32"]
    run(tmp_path / "b")
    assert stages.precisions[4:] == ["bf16", "bf16", None, "bf16"]
    toy = build_parser()._subparsers._group_actions[0].choices["toy"]
    train_parser = toy._subparsers._group_actions[0].choices["train"]
    (flag,) = [a for a in train_parser._actions if a.dest == "precision"]
    assert tuple(flag.choices) == PRECISIONS


def test_the_defaults_are_the_recipe_that_made_the_bundled_model():
    """``imposter toy train --out DIR`` with no flags remakes the shipped checkpoint: every stage's defaults
    equal the settings its records hold."""
    from imposter.toyworld.classifier import ClassifierConfig
    from imposter.toyworld.plugin import toy_checkpoint

    def as_recorded(config) -> dict:
        return json.loads(json.dumps(asdict(config)))  # tuples read back as lists

    folder = toy_checkpoint()
    record = json.loads((folder / "training.json").read_text())
    assert as_recorded(train.ToyTrainConfig()) == record["train"]
    assert as_recorded(ClassifierConfig()) == record["classifier"]["config"]
    assert as_recorded(train_controlnet.ToyControlNetConfig()) == record["controlnet"]["config"]
    detector = json.loads((folder / "keypoints" / "training.json").read_text())["config"]
    assert as_recorded(keypoint_detector.ToyKeypointConfig()) == detector == record["keypoints"]["config"]
