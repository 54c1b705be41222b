"""``animate`` end to end on the tiny pipeline: outputs, one fine-tune, shared noise, resume, errors."""

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from imposter import FinetuneConfig, RunConfig, SamplingConfig
from imposter.cli import main
from imposter.errors import ConfigError
from imposter.methods import imposter as imposter_method
from imposter.run import run_generate
from imposter.testing import random_image
from imposter.video.animate import AnimateConfig, run_animate

FAST = ["--method", "imposter-guided", "--train-steps", "3", "--steps", "4", "--k", "1", "--quiet"]
FINETUNE = FinetuneConfig(steps=3)
GUIDED = SamplingConfig(steps=4, k=1, amp_scale=0.05, phase_scale=0.3)
UNGUIDED = SamplingConfig(steps=4, k=0, amp_scale=0.0, phase_scale=0.0)


@pytest.fixture(scope="module")
def driving(tmp_path_factory):
    """Three different driving frames in a folder."""
    folder = tmp_path_factory.mktemp("driving")
    for index in range(3):
        random_image(folder / f"{index}.png", seed=10 + index)
    return folder


@pytest.fixture
def finetunes(monkeypatch):
    """The driving-batch sizes of every LoRA fine-tune the animate job runs."""
    sizes = []
    real = imposter_method.finetune_lora

    def counting(unet, scheduler, latents, embeds, config, progress=True, **family):
        sizes.append(latents.shape[0])
        return real(unet, scheduler, latents, embeds, config, progress, **family)

    monkeypatch.setattr(imposter_method, "finetune_lora", counting)
    return sizes


def config(tiny_model, pair_files, driving, sampling=GUIDED, **changes) -> AnimateConfig:
    return AnimateConfig(
        model=str(tiny_model),
        source=str(pair_files["source"]),
        driving=str(driving),
        source_prompt="a dog",
        driving_prompt="a cat jumping",
        finetune=FINETUNE,
        sampling=sampling,
        **{"method": "imposter-guided", **changes},
    )


def pixels(paths) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), dtype=np.int16) for p in paths])


def test_cli_writes_frames_animations_strip_config_and_adapter(
    tiny_model, pair_files, driving, tmp_path, finetunes, capsys
):
    out = tmp_path / "run"
    args = ["animate", "--model", str(tiny_model), "--source", str(pair_files["source"])]
    args += ["--source-prompt", "a dog", "--driving", str(driving), "--driving-prompt", "a cat jumping"]
    assert main([*args, "--out", str(out), "--batch-size", "2", *FAST]) == 0
    assert "3 frame(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"frame_000{i}.png" for i in range(3)]
    assert {"animation.gif", "animation.mp4", "strip.png", "config.json"} <= {p.name for p in out.iterdir()}
    assert (out / "adapter" / "pytorch_lora_weights.safetensors").exists()
    with Image.open(out / "animation.gif") as gif:
        assert gif.n_frames == 3
    saved = json.loads((out / "config.json").read_text())
    assert saved["status"] == "done" and saved["run"]["driving_frames"] == 3
    assert saved["run"]["seed"] == 0 and saved["run"]["sampling"]["batch_size"] == 2
    assert saved["run"]["fps"] == 8.0 and saved["training_frames"] == [0, 1, 2]
    assert finetunes == [6]  # one fine-tune for three frames: the source thrice, then the three frames


def test_frames_share_the_initial_noise(engine, tiny_model, pair_files, driving, tmp_path):
    """Guidance off and K = 0: the driving frames no longer enter sampling, so every frame is the same."""
    run = config(tiny_model, pair_files, driving, replace(UNGUIDED, batch_size=2))
    frames = pixels(run_animate(run, tmp_path / "flat", engine, progress=False).frames)
    assert np.abs(frames - frames[0]).max() <= 1  # across batches too (frames 0-1, then 2)
    guided = run_animate(config(tiny_model, pair_files, driving), tmp_path / "guided", engine, progress=False)
    guided = pixels(guided.frames)
    assert (
        np.abs(guided - guided[0]).max() > 1
    )  # with phase guidance each frame follows its own driving frame


def test_one_frame_animates_exactly_like_generate(engine, tiny_model, pair_files, tmp_path):
    animated = run_animate(
        config(tiny_model, pair_files, pair_files["driving"]), tmp_path / "anim", engine, progress=False
    )
    generated = run_generate(
        RunConfig(
            model=str(tiny_model),
            method="imposter-guided",
            source=str(pair_files["source"]),
            driving=str(pair_files["driving"]),
            source_prompt="a dog",
            driving_prompt="a cat jumping",
            target_prompt="",
            seeds=(0,),
            finetune=FINETUNE,
            sampling=GUIDED,
        ),
        tmp_path / "gen",
        engine,
        progress=False,
    )
    assert np.array_equal(pixels(animated.frames), pixels([generated.images[0]]))


def test_rerun_reuses_the_adapter_and_skips_written_frames(
    engine, tiny_model, pair_files, driving, tmp_path, finetunes
):
    out, run = tmp_path / "run", config(tiny_model, pair_files, driving)
    first = run_animate(run, out, engine, progress=False)
    kept = first.frames[0].read_bytes()
    before = pixels(first.frames)
    first.frames[1].unlink()
    said = []
    again = run_animate(run, out, engine, progress=False, log=said.append)
    assert finetunes == [6] and again.reused_adapter
    assert any("reusing the adapter" in line for line in said)
    assert any("2 of 3 frames already written" in line for line in said)
    assert again.frames[0].read_bytes() == kept
    assert np.abs(pixels(again.frames) - before).max() <= 1


def test_other_settings_are_refused_unless_overwrite(engine, tiny_model, pair_files, driving, tmp_path):
    out = tmp_path / "run"
    run_animate(config(tiny_model, pair_files, driving), out, engine, progress=False)
    with pytest.raises(ConfigError, match="--overwrite"):
        run_animate(config(tiny_model, pair_files, driving, max_frames=2), out, engine, progress=False)
    result = run_animate(
        config(tiny_model, pair_files, driving, max_frames=2), out, engine, overwrite=True, progress=False
    )
    assert len(result.frames) == 2 and not (out / "frames" / "frame_0002.png").exists()


def test_cli_refuses_several_seeds_other_methods_and_contradicting_flags(
    tiny_model, pair_files, driving, tmp_path, capsys
):
    args = ["animate", "--model", str(tiny_model), "--source", str(pair_files["source"]), "--source-prompt"]
    args += ["a dog", "--driving", str(driving), "--driving-prompt", "a cat jumping", "--out", str(tmp_path)]
    assert main([*args, "--seeds", "0", "1"]) == 2
    assert main([*args, "--method", "imposter-authors"]) == 2
    assert main([*args, "--method", "baseline++", "--k", "2"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert "--seeds takes one value" in errors[0] and "cannot use --method imposter-authors" in errors[1]
    assert "--k 2 contradicts --method baseline++" in errors[2]
