"""pose-control (DreamPose's way): a subject LoRA on the source, the target caption through a pose ControlNet
fed the driving pose map; on tiny random SD and SDXL pipelines and ControlNets built in code."""

import json

import pytest
import torch
from PIL import Image

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.cli import main
from imposter.errors import ConfigError, ModelLoadError
from imposter.methods import check_compatible, get_method
from imposter.testing import random_controlnet, random_image, save_random_pipeline

FAST = SamplingConfig(steps=4, k=0, amp_scale=0.0, phase_scale=0.0)
SOURCE_PROMPT, DRIVING_PROMPT = "a dog", "a cat drinking water from a mug"


def pose_map(seed: int):
    return random_image(size=(64, 64), seed=seed)


@pytest.fixture(scope="module", params=["sd", "sdxl"])
def engine(request, tmp_path_factory):
    folder = save_random_pipeline(request.param, tmp_path_factory.mktemp(request.param))
    engine = ImPoster.from_pretrained(str(folder), device="cpu")
    controlnet = random_controlnet(engine.denoiser, engine.family.vae_scale_factor(engine.pipe))
    saved = tmp_path_factory.mktemp("controlnet") / request.param
    controlnet.save_pretrained(saved, safe_serialization=True)
    engine.load_controlnet(str(saved))  # through the user's path: a folder of safetensors
    return engine


def prepare(engine, seed=3):
    return engine.prepare(
        random_image(seed=1), SOURCE_PROMPT, random_image(seed=2), DRIVING_PROMPT, height=16, width=16,
        driving_pose_map=pose_map(seed),
    )  # fmt: skip


def sample(engine, pair, learned, sampling=FAST):
    method = get_method("pose-control")
    with learned.active(engine):
        return method.sample(engine, pair, learned, engine.initial_noise([0, 1], pair), sampling, False)


def test_the_driving_pose_map_steers_the_sampling_through_the_controlnet(engine):
    pair, other = prepare(engine, seed=3), prepare(engine, seed=4)
    learned = engine.personalize(pair, "pose-control", FinetuneConfig(steps=2), progress=False)
    first, again, moved = (
        sample(engine, pair, learned),
        sample(engine, pair, learned),
        sample(engine, other, learned),
    )
    assert torch.isfinite(first).all() and torch.equal(first, again)
    assert (first - moved).abs().max() > 1e-4  # another map, another image
    off = SamplingConfig(**{**FAST.__dict__, "controlnet_scale": 0.0})
    assert torch.allclose(sample(engine, pair, learned, off), sample(engine, other, learned, off))
    assert (
        engine.denoiser.forward.__func__ is type(engine.denoiser).forward
    )  # the patch is gone after sampling


def test_the_subject_lora_learns_the_source_alone_and_is_not_impostors(engine, monkeypatch):
    import imposter.methods.imposter as module

    seen = {}
    original = module.finetune_lora

    def spy(unet, scheduler, latents, conditioning, *args, **kwargs):
        seen["rows"] = latents.shape[0]
        return original(unet, scheduler, latents, conditioning, *args, **kwargs)

    monkeypatch.setattr(module, "finetune_lora", spy)
    pair = prepare(engine)
    learned = engine.personalize(pair, "pose-control", FinetuneConfig(steps=1), progress=False)
    assert seen["rows"] == 1  # the source pair only
    with pytest.raises(ConfigError, match="--method pose-control"):
        check_compatible(get_method("imposter-guided"), learned.method)


def test_missing_inputs_are_one_line_errors_before_any_fine_tuning(engine):
    no_map = engine.prepare(
        random_image(seed=1), SOURCE_PROMPT, random_image(seed=2), DRIVING_PROMPT, height=16, width=16
    )
    with pytest.raises(ConfigError, match="--driving-pose-map FILE"):
        engine.personalize(no_map, "pose-control", FinetuneConfig(steps=1), progress=False)
    controlnet, engine.controlnet = engine.controlnet, None
    try:
        with pytest.raises(ConfigError, match="needs --controlnet ID_OR_FOLDER"):
            engine.personalize(prepare(engine), "pose-control", FinetuneConfig(steps=1), progress=False)
    finally:
        engine.controlnet = controlnet


def test_a_controlnet_that_cannot_be_read_or_does_not_fit_is_a_one_line_error(engine, tmp_path):
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        engine.load_controlnet(str(tmp_path / "missing"))
    other = "sdxl" if engine.family.name == "sd" else "sd"
    foreign = ImPoster.from_pretrained(str(save_random_pipeline(other, tmp_path)), device="cpu")
    wrong = random_controlnet(foreign.denoiser, foreign.family.vae_scale_factor(foreign.pipe))
    wrong.save_pretrained(tmp_path / "wrong", safe_serialization=True)
    if wrong.config.cross_attention_dim != engine.denoiser.config.cross_attention_dim:
        with pytest.raises(ModelLoadError, match="another base model"):
            engine.load_controlnet(str(tmp_path / "wrong"))


def test_flux_is_refused_with_what_is_supported(tmp_path):
    engine = ImPoster.from_pretrained(str(save_random_pipeline("flux", tmp_path)), device="cpu")
    with pytest.raises(ConfigError, match="SD 1.x/2.x and SDXL"):
        get_method("pose-control").check_model(engine)
    with pytest.raises(ConfigError, match="SD 1.x/2.x and SDXL"):
        engine.load_controlnet("anything")


def test_generate_runs_pose_control_from_the_command_line(tiny_model, pair_files, tmp_path):
    engine = ImPoster.from_pretrained(str(tiny_model), device="cpu")
    random_controlnet(engine.denoiser, engine.family.vae_scale_factor(engine.pipe)).save_pretrained(
        tmp_path / "controlnet", safe_serialization=True
    )
    random_image(tmp_path / "pose.png", seed=5)
    args = [
        "generate", "--model", str(tiny_model), "--method", "pose-control",
        "--source", str(pair_files["source"]), "--source-prompt", SOURCE_PROMPT,
        "--driving", str(pair_files["driving"]), "--driving-prompt", DRIVING_PROMPT,
        "--train-steps", "2", "--steps", "4", "--quiet", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(args) == 2  # neither the ControlNet nor the map: refused, nothing trained
    assert not (tmp_path / "run" / "adapter").exists()
    full = [
        *args,
        "--controlnet",
        str(tmp_path / "controlnet"),
        "--driving-pose-map",
        str(tmp_path / "pose.png"),
    ]
    assert main(full) == 0
    run = json.loads((tmp_path / "run" / "config.json").read_text())["run"]
    assert run["controlnet"] == str(tmp_path / "controlnet") and run["driving_pose_map"].endswith("pose.png")
    assert run["sampling"]["controlnet_scale"] == 1.0 and run["sampling"]["k"] == 0
    assert Image.open(tmp_path / "run" / "seed_0.png").size == (run["width"], run["height"])


def test_detect_pose_without_controlnet_aux_says_what_to_install(monkeypatch):
    import builtins

    from imposter.controlnet import detect_pose

    real_import = builtins.__import__

    def no_aux(name, *args, **kwargs):
        if name == "controlnet_aux":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aux)
    with pytest.raises(ConfigError, match="pip install controlnet_aux"):
        detect_pose(random_image(), "openpose")


def test_the_patch_keeps_a_forward_set_on_the_instance_as_accelerates_offload_hooks_do():
    from imposter.controlnet import controlled

    class Net(torch.nn.Module):
        def forward(self, sample, timestep, encoder_hidden_states=None, **kwargs):
            return kwargs

    def hooked(sample, timestep, encoder_hidden_states=None, **kwargs):
        return {"hooked": True, **kwargs}

    net = Net()
    net.forward = hooked

    def controlnet(*args, **kwargs):
        return ("down",), "middle"

    with controlled(net, controlnet, torch.zeros(1, 3, 2, 2), 1.0):
        seen = net(torch.zeros(2, 4, 2, 2), 0)
    assert seen == {
        "hooked": True,
        "down_block_additional_residuals": ("down",),
        "mid_block_additional_residual": "middle",
    }
    assert net.forward is hooked
