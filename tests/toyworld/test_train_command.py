"""``imposter toy train`` chains the pose ControlNet stage after the pipeline, and a rerun carries on: the stages
themselves are faked here (their own tests train them on tiny settings); what is tested is the command's order."""

import json
import shutil
from dataclasses import asdict

import pytest

from imposter.cli import main
from imposter.toyworld import train, train_controlnet


@pytest.fixture
def stages(monkeypatch):
    """The stages the command ran, in order (the ControlNet's with its steps)."""
    ran = []

    def fake_pipeline(out, config, classifier=None, log=print, progress=True, command=None):
        ran.append("pipeline")
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

    def fake_controlnet(folder, config, log=print, progress=True, command=None):
        ran.append(f"controlnet {config.steps}")
        log("controlnet trained")
        (folder / "controlnet").mkdir(exist_ok=True)
        (folder / "controlnet" / "config.json").write_text("{}")
        return {"seconds": 2.0}

    monkeypatch.setattr(train, "train_toy_model", fake_pipeline)
    monkeypatch.setattr(train_controlnet, "add_pose_controlnet", fake_controlnet)
    return ran


def run(out, *flags):
    main(["toy", "train", "--out", str(out), "--unet-steps", "7", "--quiet", *flags])


def test_the_controlnet_stage_follows_the_pipeline_and_a_rerun_carries_on(stages, tmp_path):
    out = tmp_path / "model"
    run(out, "--controlnet-steps", "5")
    assert stages == ["pipeline", "controlnet 5"]
    run(out, "--controlnet-steps", "5")  # both done: nothing again
    assert stages == ["pipeline", "controlnet 5"]
    (out / "controlnet" / "config.json").unlink()  # as if killed during the ControlNet stage
    run(out, "--controlnet-steps", "5")
    assert stages == ["pipeline", "controlnet 5", "controlnet 5"]  # the pipeline is kept
    log = (out / "train.log").read_text()
    assert (
        log.index("pipeline trained") < log.index("controlnet trained")
        and log.count("controlnet trained") == 2
    )
    run(out, "--unet-steps", "8", "--controlnet-steps", "5")  # other settings: the pipeline again
    assert stages[-2:] == ["pipeline", "controlnet 5"]


def test_no_controlnet_stage_with_zero_steps_and_the_default_is_the_shipped_recipe(stages, tmp_path):
    run(tmp_path / "a", "--controlnet-steps", "0")
    run(tmp_path / "b")
    assert stages == ["pipeline", "pipeline", f"controlnet {train_controlnet.ToyControlNetConfig().steps}"]


def test_the_flux_family_refuses_the_controlnet_stage(tmp_path, capsys):
    assert (
        main(["toy", "train", "--family", "flux", "--out", str(tmp_path / "f"), "--controlnet-steps", "5"])
        == 2
    )
    assert "--controlnet-steps" in capsys.readouterr().err and not (tmp_path / "f").exists()
