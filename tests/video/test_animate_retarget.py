"""``animate --method imposter``: the source moved into every frame's own pose by the frames' keypoints
(a folder of OpenPose JSON), each frame redrawn from its own moved picture; on the tiny SD pipeline."""

import json

import pytest
import torch

from imposter.cli import main
from imposter.errors import ConfigError, InputImageError
from imposter.retarget import to_openpose
from imposter.toyworld.render import body_keypoints, render
from imposter.toyworld.world import ACTION_POSES, STANDING, get_class
from imposter.video.animate import AnimateConfig, run_animate

SOURCE, DRIVER = get_class("robot").reference, get_class("duck").reference
POSES = (STANDING, ACTION_POSES["kicking"], ACTION_POSES["raising both arms"])


@pytest.fixture()
def inputs(tmp_path):
    (tmp_path / "driving").mkdir()
    (tmp_path / "keypoints").mkdir()
    for index, pose in enumerate(POSES):
        render(DRIVER, pose).save(tmp_path / "driving" / f"{index}.png")
        (tmp_path / "keypoints" / f"frame_{index}_keypoints.json").write_text(
            json.dumps(to_openpose(body_keypoints(DRIVER, pose)))
        )
    render(SOURCE, STANDING).save(tmp_path / "source.png")
    (tmp_path / "source.json").write_text(json.dumps(to_openpose(body_keypoints(SOURCE, STANDING))))
    return tmp_path


def config(tiny_model, folder, **changes):
    settings = dict(
        model=str(tiny_model), source=str(folder / "source.png"), driving=str(folder / "driving"),
        source_prompt="a robot", driving_prompt="a duck dancing", method="imposter",
        sampling={"steps": 10}, height=64, width=64, source_keypoints=str(folder / "source.json"),
        driving_keypoints=str(folder / "keypoints"),
    )  # fmt: skip
    return AnimateConfig(**(settings | changes))


def test_each_frame_starts_from_the_source_moved_into_its_own_pose(tiny_model, inputs, monkeypatch):
    import imposter.methods.imposter as module

    starts = []  # the latents each sampling batch starts from
    real = module.from_driving

    def recording(engine, pair, noise, sampling, latents=None):
        starts.append(latents.clone())
        return real(engine, pair, noise, sampling, latents)

    monkeypatch.setattr(module, "from_driving", recording)
    result = run_animate(config(tiny_model, inputs), inputs / "out", progress=False)
    assert len(result.frames) == 3 and [len(batch) for batch in starts] == [3]  # one batch, a start per frame
    first, second, third = starts[0]
    assert not torch.equal(first, second) and not torch.equal(second, third)  # each frame's own pose
    assert not (inputs / "out" / "adapter" / "adapter_model.safetensors").exists()  # nothing learned


def test_a_keypoint_file_for_every_frame_or_a_one_line_error(tiny_model, inputs):
    (inputs / "keypoints" / "frame_2_keypoints.json").unlink()
    with pytest.raises(ConfigError, match="2 keypoint file\\(s\\) for 3 driving frame\\(s\\)"):
        run_animate(config(tiny_model, inputs), inputs / "a", progress=False)
    with pytest.raises(InputImageError, match="not a folder"):
        run_animate(config(tiny_model, inputs, driving_keypoints=str(inputs / "source.json")), inputs / "b")
    with pytest.raises(ConfigError, match="needs the body keypoints"):
        run_animate(config(tiny_model, inputs, driving_keypoints=None), inputs / "c", progress=False)
    assert not (inputs / "c").exists()  # refused before the run folder opens


def test_the_cli_animates_with_keypoints(tiny_model, inputs):
    main([
        "animate", "--model", str(tiny_model), "--source", str(inputs / "source.png"), "--source-prompt", "a robot",
        "--driving", str(inputs / "driving"), "--driving-prompt", "a duck dancing", "--method", "imposter",
        "--source-keypoints", str(inputs / "source.json"), "--driving-keypoints", str(inputs / "keypoints"),
        "--steps", "10", "--height", "64", "--width", "64", "--out", str(inputs / "out"), "--quiet",
    ])  # fmt: skip
    assert len(list((inputs / "out" / "frames").glob("*.png"))) == 3


def test_detect_pose_finds_the_source_and_every_frame(tiny_model, inputs, monkeypatch):
    """--detect-pose openpose on animate: the source's and each frame's joints from OpenPose's body model
    (controlnet_aux faked: its weights come from the hub), none given as files."""
    import sys
    import types

    import numpy as np

    from imposter import pose_detection
    from imposter.retarget import OPENPOSE_COCO18

    bodies = {np.asarray(render(DRIVER, pose)).tobytes(): body_keypoints(DRIVER, pose) for pose in POSES}
    bodies[np.asarray(render(SOURCE, STANDING)).tobytes()] = body_keypoints(SOURCE, STANDING)
    seen = []

    class Detector:
        @classmethod
        def from_pretrained(cls, name):
            return cls()

        def body_estimation(self, bgr):
            points = bodies[bgr[:, :, ::-1].tobytes()]
            seen.append(points)
            candidate = [[*points[name], 0.9, i] for i, name in OPENPOSE_COCO18.items()]
            return np.array(candidate), np.array([[*range(14), -1, -1, -1, -1, 12.6, 14]])

    monkeypatch.setitem(sys.modules, "controlnet_aux", types.SimpleNamespace(OpenposeDetector=Detector))
    pose_detection._loaded.cache_clear()
    detected = config(
        tiny_model, inputs, source_keypoints=None, driving_keypoints=None, detect_pose="openpose"
    )
    result = run_animate(detected, inputs / "detected", progress=False)
    assert len(result.frames) == 3 and len(seen) == 4  # the source and each of the three frames, once
    pose_detection._loaded.cache_clear()
