"""The toy FLUX.1 trainer on tiny settings (it writes a FluxPipeline our FLUX family runs, and resumes
exactly), and the shipped toy-flux checkpoint (it loads and draws what its caption says)."""

from __future__ import annotations

import json

import pytest
import torch
from resumes import assert_resumes_exactly

from imposter import ImPoster
from imposter.models import load_pipeline, model_family
from imposter.toyworld.flux_model import ToyFluxConfig, build_flux_components
from imposter.toyworld.plugin import toy_checkpoint
from imposter.toyworld.train import encode_examples, render_examples
from imposter.toyworld.train_flux import ToyFluxTrainConfig, train_flux_denoiser, train_toy_flux

TINY_MODEL = ToyFluxConfig(
    double_layers=1, single_layers=1, heads=2, head_dim=16, rope_axes=(4, 6, 6), t5_width=32, t5_layers=1
)  # fmt: skip
TINY_TRAIN = ToyFluxTrainConfig(
    examples=24, steps=4, batch=4, warmup_steps=1, sanity_samples=0, checkpoint_every=2
)


def test_train_writes_a_flux_pipeline_that_the_flux_family_loads_and_samples(tmp_path):
    from diffusers import FluxPipeline

    out = tmp_path / "toy-flux"
    summary = train_toy_flux(out, train=TINY_TRAIN, model=TINY_MODEL, log=lambda _: None, progress=False)
    assert json.loads((out / "training.json").read_text())["train"]["steps"] == 4
    assert summary["final_loss"] > 0 and not (tmp_path / "toy-flux.work").exists()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))
    assert isinstance(FluxPipeline.from_pretrained(out, local_files_only=True), FluxPipeline)
    assert model_family(str(out)).name == "flux"

    pipe = load_pipeline(str(out), "cpu", log=lambda _: None)
    assert pipe.vae.config.shift_factor == 0.0 and pipe.tokenizer_2.model_max_length == 16
    engine = ImPoster(pipe)
    assert engine.family.native_size(pipe) == 64
    assert engine.encode_prompt("a robot waving").embeds.shape == (1, 16, TINY_MODEL.t5_width)


def _denoiser_run(folder, hook=None):
    torch.manual_seed(0)
    components = build_flux_components(toy_checkpoint(), TINY_MODEL)
    images, captions = render_examples(TINY_TRAIN.examples, 0, progress=False)
    means, stds = encode_examples(components["vae"], images)
    if hook is not None:
        components["transformer"].register_forward_pre_hook(hook)
    losses = train_flux_denoiser(
        components, means, stds, captions, TINY_TRAIN, lambda _: None, progress=False, checkpoints=folder
    )
    return losses, {**components["transformer"].state_dict(), **components["text_encoder_2"].state_dict()}


def test_a_killed_flux_run_resumes_to_the_same_weights(tmp_path):
    assert_resumes_exactly(_denoiser_run, tmp_path)


SHIPPED = toy_checkpoint("toy-flux")
shipped = pytest.mark.skipif(not (SHIPPED / "model_index.json").is_file(), reason="toy-flux is not shipped")


@shipped
def test_shipped_toy_flux_is_a_small_safetensors_flux_pipeline():
    files = [p for p in SHIPPED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    weights = [p.suffix for p in files if p.suffix in {".safetensors", ".bin", ".pt", ".pth", ".ckpt"}]
    assert weights and set(weights) == {".safetensors"}
    training = json.loads((SHIPPED / "training.json").read_text())
    assert training["command"].startswith("imposter toy train --family flux")
    assert (SHIPPED / "train.log").is_file()
    assert model_family("toy-flux").name == "flux"


# the toy FLUX model's captions: toy world v2's ten subjects, one per v3 class
V2_NAMES = {
    "robot": "red robot", "bird": "blue bird", "frog": "green frog", "tiger": "striped tiger", "dog": "spotted dog",
    "pig": "pink pig", "alien": "purple alien", "duck": "yellow duck", "cat": "black cat", "dragon": "teal dragon",
}  # fmt: skip


@shipped
def test_shipped_toy_flux_draws_64_px_images_of_the_captioned_subject_and_action():
    from imposter.toyworld.classifier import load_classifier
    from imposter.toyworld.sanity import sanity_check

    pipe = load_pipeline("toy-flux", "cpu", log=lambda _: None)
    image = pipe(
        "a red robot waving", height=64, width=64, num_inference_steps=4, max_sequence_length=16
    ).images[0]
    assert image.size == (64, 64)
    # 20 generations (every subject standing and waving; two of them held out), read by the SD toy's
    # classifier; measured (v2 classifier) with seeds 0, 1, 2: subject 1.0, 1.0, 1.0 and action 0.94, 1.0,
    # 1.0 on the training combinations. Asserted with room: 0.8 and 0.75 (chance: 0.1 and 0.09). The toy
    # FLUX model is still v2's (README): it is asked with the v2 captions it was trained on.
    result = sanity_check(
        pipe, load_classifier(), samples=1, seed=0, progress=False, actions=[None, "waving"], names=V2_NAMES
    )
    assert result["subject_accuracy"] >= 0.8 and result["action_accuracy"] >= 0.75
