"""``animate --method pose-control`` (DreamPose's own job): one subject LoRA, then every frame through the pose
ControlNet fed that frame's own map; on the tiny SD pipeline with a random ControlNet built in code."""

import pytest
import torch
from PIL import Image

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.cli import main
from imposter.controlnet import pose_map_tensor
from imposter.errors import ConfigError
from imposter.images import fit_image
from imposter.methods import pose_control
from imposter.testing import random_controlnet, random_image
from imposter.video.animate import AnimateConfig, run_animate

FAST = SamplingConfig(steps=4, k=0, amp_scale=0.0, phase_scale=0.0)


@pytest.fixture(scope="module")
def controlnet(tiny_model, tmp_path_factory):
    engine = ImPoster.from_pretrained(str(tiny_model), device="cpu")
    folder = tmp_path_factory.mktemp("controlnet")
    random_controlnet(engine.denoiser, engine.family.vae_scale_factor(engine.pipe)).save_pretrained(
        folder, safe_serialization=True
    )
    return folder


def folder_of(path, seeds):
    path.mkdir()
    for index, seed in enumerate(seeds):
        random_image(path / f"{index}.png", seed=seed)
    return path


def animate(tiny_model, pair_files, controlnet, driving, maps, out, **changes):
    config = AnimateConfig(
        model=str(tiny_model), source=str(pair_files["source"]), driving=str(driving), source_prompt="a dog",
        driving_prompt="a cat jumping", method="pose-control", finetune=FinetuneConfig(steps=2), sampling=FAST,
        controlnet=str(controlnet), driving_pose_maps=str(maps) if maps else None, **changes,
    )  # fmt: skip
    return run_animate(config, out, progress=False)


def test_each_frame_follows_its_own_pose_map(tiny_model, pair_files, controlnet, tmp_path, monkeypatch):
    seen = []  # the pose maps the ControlNet is fed, per sampling batch
    real = pose_control.controlled

    def recording(unet, net, pose_map, scale):
        seen.append(pose_map.clone())
        return real(unet, net, pose_map, scale)

    monkeypatch.setattr(pose_control, "controlled", recording)
    driving = folder_of(tmp_path / "driving", [10, 11, 12])
    maps = folder_of(tmp_path / "maps", [20, 21, 20])  # frames 0 and 2 share a map
    result = animate(tiny_model, pair_files, controlnet, driving, maps, tmp_path / "three", seed=0)
    assert len(result.frames) == 3 and [len(batch) for batch in seen] == [3]  # one batch, a map per frame
    first, second, third = seen[0]
    assert torch.equal(first, third) and not torch.equal(first, second)
    fitted = fit_image(Image.open(maps / "1.png"), 16, 16, "pad")
    assert torch.equal(second, pose_map_tensor(fitted, second.device, second.dtype)[0])


def test_a_map_for_every_frame_or_a_one_line_error(tiny_model, pair_files, controlnet, tmp_path):
    driving = folder_of(tmp_path / "driving", [10, 11, 12])
    with pytest.raises(ConfigError, match="2 pose map\\(s\\) for 3 driving frame\\(s\\)"):
        animate(
            tiny_model, pair_files, controlnet, driving, folder_of(tmp_path / "maps", [1, 2]), tmp_path / "a"
        )
    with pytest.raises(ConfigError, match="needs --driving-pose-map"):
        animate(tiny_model, pair_files, controlnet, driving, None, tmp_path / "b")
    assert not (tmp_path / "b" / "adapter").exists()  # refused before any fine-tune


def test_the_cli_animates_with_pose_maps(tiny_model, pair_files, controlnet, tmp_path):
    driving = folder_of(tmp_path / "driving", [10, 11])
    maps = folder_of(tmp_path / "maps", [20, 21])
    main([
        "animate", "--model", str(tiny_model), "--source", str(pair_files["source"]), "--source-prompt", "a dog",
        "--driving", str(driving), "--driving-prompt", "a cat jumping", "--method", "pose-control",
        "--controlnet", str(controlnet), "--driving-pose-maps", str(maps), "--train-steps", "2", "--steps", "3",
        "--out", str(tmp_path / "out"), "--quiet",
    ])  # fmt: skip
    assert len(list((tmp_path / "out" / "frames").glob("*.png"))) == 2
