"""The toy trainer on tiny settings: it runs end to end, writes a loadable pipeline, and resumes exactly."""

import json
import math
from dataclasses import asdict, replace

import pytest
import torch
from resumes import assert_resumes_exactly

from imposter.errors import ConfigError
from imposter.toyworld.classifier import ClassifierConfig, load_classifier_weights
from imposter.toyworld.model import ToyModelConfig, build_components
from imposter.toyworld.refit import refine_decoder, retrain_classifier
from imposter.toyworld.train import (
    ToyTrainConfig,
    _pixel_weights,
    encode_examples,
    render_examples,
    train_denoiser,
    train_toy_model,
)

TINY_MODEL = ToyModelConfig(
    text_hidden=32, text_layers=1, text_heads=2, vae_channels=(8, 16, 16), vae_layers_per_block=1,
    unet_channels=(16, 16, 32), unet_head_dim=8, vae_norm_groups=4, unet_norm_groups=4,
)  # fmt: skip
TINY_TRAIN = ToyTrainConfig(
    examples=48, vae_steps=2, decoder_steps=2, vae_batch=4, unet_steps=4, unet_batch=4, warmup_steps=1, sanity_samples=0,
    checkpoint_every=2,
)  # fmt: skip
TINY_CLASSIFIER = ClassifierConfig(
    channels=(8, 8, 8, 8), steps=2, batch=12, chimeras_per_batch=4, instances=22, chimeras=6, eval_instances=2
)


def test_train_writes_a_loadable_pipeline_with_its_classifier_and_removes_its_work_folder(tmp_path):
    from diffusers import StableDiffusionPipeline

    out = tmp_path / "toy"
    summary = train_toy_model(
        out, TINY_TRAIN, TINY_MODEL, TINY_CLASSIFIER, log=lambda _: None, progress=False
    )
    assert set(summary["timings_s"]) >= {"render", "vae", "decoder", "classifier", "unet"}
    assert json.loads((out / "training.json").read_text())["train"]["unet_steps"] == 4
    pipe = StableDiffusionPipeline.from_pretrained(out, safety_checker=None, requires_safety_checker=False)
    assert pipe.vae.config.scaling_factor == pytest.approx(summary["latent_scaling_factor"])
    assert load_classifier_weights(out) is not None
    assert not (tmp_path / "toy.work").exists()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))

    before = (out / "classifier" / "model.safetensors").read_bytes()
    again = replace(TINY_CLASSIFIER, seed=1)
    retrain_classifier(
        out, again, sanity_samples=0, log=lambda _: None, progress=False, command="imposter toy x"
    )
    assert (out / "classifier" / "model.safetensors").read_bytes() != before
    recorded = json.loads((out / "training.json").read_text())["classifier"]
    assert recorded["config"]["seed"] == 1 and recorded["command"] == "imposter toy x"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    # the decoder stage run again on the saved pipeline: the decoder moves, the encoder (the latents) does not
    vae_before = pipe.vae.state_dict()
    later = replace(TINY_TRAIN, decoder_steps=3, unet_steps=99)  # a later recipe: only its decoder stage runs
    refine_decoder(out, later, log=lambda _: None, progress=False, command="c")
    vae_after = StableDiffusionPipeline.from_pretrained(out, safety_checker=None).vae.state_dict()
    assert all(
        torch.equal(vae_before[k], vae_after[k])
        for k in vae_before
        if not k.startswith(("decoder", "post_quant"))
    )
    assert not all(torch.equal(vae_before[k], vae_after[k]) for k in vae_before if k.startswith("decoder"))
    recorded = json.loads((out / "training.json").read_text())
    assert recorded["train"]["decoder_steps"] == 3 and recorded["decoder_command"] == "c"
    assert recorded["train"]["unet_steps"] == TINY_TRAIN.unet_steps  # the other stages' settings stay
    with pytest.raises(ConfigError, match="other seed"):
        refine_decoder(out, replace(TINY_TRAIN, seed=5), log=lambda _: None, progress=False)


def test_the_decoder_stage_weights_a_ring_of_background_around_the_figure():
    from imposter.toyworld.world import BACKGROUND

    pixels = torch.tensor(BACKGROUND, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 12, 12) / 127.5 - 1.0
    pixels = pixels.clone()
    pixels[:, :, 5:7, 5:7] = -1.0  # a 2x2 black figure
    config = ToyTrainConfig(figure_weight=5.0, edge_weight=30.0, edge_width=2)
    joint, edges = _pixel_weights(pixels, config, False)[0, 0], _pixel_weights(pixels, config, True)[0, 0]
    assert joint[5, 5] == edges[5, 5] == 5.0 and joint[3, 3] == 1.0 and joint.sum() == 144 + 4 * 4
    assert edges[3, 3] == edges[8, 8] == 30.0 and edges[2, 2] == edges[9, 5] == 1.0  # 2 px wide, no more
    assert int((edges == 30.0).sum()) == 6 * 6 - 4


def test_a_work_folder_from_other_settings_is_refused(tmp_path):
    (tmp_path / "toy.work").mkdir()
    (tmp_path / "toy.work" / "settings.json").write_text('{"train": {}}')
    with pytest.raises(ConfigError, match="other settings"):
        train_toy_model(
            tmp_path / "toy", TINY_TRAIN, TINY_MODEL, TINY_CLASSIFIER, log=lambda _: None, progress=False
        )


def _denoiser_run(folder, hook=None):
    torch.manual_seed(0)
    components = build_components(TINY_MODEL)
    images, captions = render_examples(TINY_TRAIN.examples, 0, progress=False)
    means, stds = encode_examples(components["vae"], images)
    if hook is not None:
        components["unet"].register_forward_pre_hook(hook)
    losses = train_denoiser(
        components, means, stds, captions, TINY_TRAIN, lambda _: None, progress=False, checkpoints=folder
    )
    return losses, components["unet"].state_dict()


def test_a_killed_denoiser_run_resumes_to_the_same_weights(tmp_path):
    assert_resumes_exactly(_denoiser_run, tmp_path)


def test_changing_only_denoiser_settings_keeps_the_finished_vae_and_classifier(tmp_path):
    out = tmp_path / "toy"
    work = tmp_path / "toy.work"
    work.mkdir()
    first = {"train": asdict(TINY_TRAIN), "model": asdict(TINY_MODEL), "classifier": asdict(TINY_CLASSIFIER)}
    (work / "settings.json").write_text(json.dumps({**first, "train": {**first["train"], "unet_steps": 99}}))
    (work / "denoiser").mkdir()
    (work / "denoiser" / "progress.json").write_text('{"step": 50, "losses": []}')
    lines = []
    train_toy_model(out, TINY_TRAIN, TINY_MODEL, TINY_CLASSIFIER, log=lines.append, progress=False)
    assert any("keeping the VAE and classifier" in line for line in lines)
    assert not any("resuming the denoiser" in line for line in lines)


def test_bf16_precision_runs_the_convolutions_in_bfloat16_and_fp32_leaves_them_alone():
    from imposter.toyworld.steps import mixed_precision

    conv = torch.nn.Conv2d(3, 4, 3)
    pixels = torch.randn(1, 3, 8, 8)
    with mixed_precision("bf16"):
        assert conv(pixels).dtype == torch.bfloat16
    with mixed_precision("fp32"):
        assert conv(pixels).dtype == torch.float32
    with pytest.raises(ValueError, match="fp32, bf16"):
        mixed_precision("fp16")


def test_the_vae_and_classifier_train_in_bf16_with_float32_weights(tmp_path):
    from imposter.toyworld.classifier import train_classifier
    from imposter.toyworld.train import train_vae

    torch.manual_seed(0)
    vae = build_components(TINY_MODEL)["vae"]
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    images, _ = render_examples(8, 0, progress=False)
    losses = train_vae(vae, images, replace(TINY_TRAIN, precision="bf16"), lambda _: None, progress=False)
    assert len(losses) == TINY_TRAIN.vae_steps and all(map(math.isfinite, losses))
    assert all(v.dtype == torch.float32 for v in vae.state_dict().values())
    assert not all(torch.equal(before[k], v) for k, v in vae.state_dict().items())
    classifier, report = train_classifier(
        vae, replace(TINY_CLASSIFIER, precision="bf16"), lambda _: None, False
    )
    assert all(p.dtype == torch.float32 for p in classifier.parameters())
    assert 0.0 <= report["renders_subject_accuracy"] <= 1.0
