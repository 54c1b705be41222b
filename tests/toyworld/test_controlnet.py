"""The toy pose ControlNet stage on tiny settings: it trains beside a toy pipeline, resumes exactly, and
``pose-control`` on that pipeline finds it."""

import json

import torch
from resumes import assert_resumes_exactly
from test_train import TINY_CLASSIFIER, TINY_MODEL, TINY_TRAIN

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.toyworld.model import assemble_pipeline, build_components
from imposter.toyworld.pairs import make_pairs
from imposter.toyworld.train import train_toy_model
from imposter.toyworld.train_controlnet import ToyControlNetConfig, add_pose_controlnet, train_pose_controlnet

TINY = ToyControlNetConfig(examples=12, steps=4, batch=4, warmup_steps=1, checkpoint_every=2, threads=1)


def _run(folder, hook=None):
    torch.manual_seed(0)
    pipe = assemble_pipeline(build_components(TINY_MODEL))
    if hook is not None:
        pipe.unet.register_forward_pre_hook(hook)  # the frozen UNet runs once per step
    controlnet, losses = train_pose_controlnet(pipe, TINY, lambda _: None, False, checkpoints=folder)
    return losses, controlnet.state_dict()


def test_a_killed_controlnet_run_resumes_to_the_same_weights(tmp_path):
    assert_resumes_exactly(_run, tmp_path)


def test_the_stage_saves_a_controlnet_that_pose_control_on_that_model_uses(tmp_path):
    out = tmp_path / "toy"
    train_toy_model(out, TINY_TRAIN, TINY_MODEL, TINY_CLASSIFIER, log=lambda _: None, progress=False)
    stage = add_pose_controlnet(out, TINY, log=lambda _: None, progress=False, command="test")
    assert (out / "controlnet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (out / "controlnet.work").exists()
    recorded = json.loads((out / "training.json").read_text())["controlnet"]
    assert recorded == json.loads(json.dumps(stage)) and len(recorded["map_effect"]) == 2
    engine = ImPoster.from_pretrained(str(out), device="cpu")
    toy = make_pairs(1, 0, "tune")[0]
    pair = engine.prepare(
        toy.source_image, toy.source_prompt, toy.driving_image, toy.driving_prompt,
        driving_pose_map=toy.driving_pose_map, target_pose_map=toy.target_pose_map,
    )  # fmt: skip
    learned = engine.personalize(pair, "pose-control", FinetuneConfig(steps=1), progress=False)
    assert engine.controlnet is not None  # found beside the model: nothing to pass
    sampling = SamplingConfig(steps=3, k=0, amp_scale=0.0, phase_scale=0.0)
    driving = engine.generate(pair, learned, [0], sampling, method="pose-control", progress=False)
    oracle = engine.generate(pair, learned, [0], sampling, method="pose-control-oracle", progress=False)
    assert driving[0].size == oracle[0].size == (64, 64)
