"""--method kontext: FLUX.1 Kontext editing the source image, on a tiny random FluxKontextPipeline."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.cli import main
from imposter.errors import PromptError
from imposter.families.flux import pack, unpack
from imposter.methods import get_method
from imposter.prompts import edit_instruction
from imposter.settings import resolve
from imposter.testing import random_image, save_random_pipeline

FAST = ["--height", "16", "--width", "16", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_random_pipeline("kontext", tmp_path_factory.mktemp("kontext"))


@pytest.fixture(scope="module")
def engine(folder):
    return ImPoster.from_pretrained(str(folder), device="cpu")


@pytest.fixture(scope="module")
def pair(engine):
    return engine.prepare(
        random_image(seed=1),
        "a dog",
        random_image(seed=2),
        "a cat drinking water from a mug",
        height=16,
        width=16,
    )


def generate(model, pair_files, out, *extra):
    return main(
        [
            "generate", "--model", str(model), "--method", "kontext",
            "--source", str(pair_files["source"]), "--source-prompt", "a dog",
            "--driving", str(pair_files["driving"]), "--driving-prompt", "a cat drinking water from a mug",
            "--out", str(out), *FAST, *extra,
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    "source, driving, instruction",
    [
        (
            "a dog",
            "a cat drinking water from a mug",
            "show the dog drinking water from a mug, keeping the dog's",
        ),
        (
            "An old teddy bear.",
            "a man is holding a ball",
            "show the old teddy bear holding a ball, keeping the old",
        ),
        ("a fox sitting", "a woman with a guitar", "show the fox with a guitar, keeping the fox's"),
    ],
)
def test_the_instruction_is_the_source_subject_doing_the_driving_action(source, driving, instruction):
    assert instruction in edit_instruction(source, driving)


def test_without_a_driving_action_the_instruction_shows_the_target_prompt():
    assert "show a red car flying," in edit_instruction("a red car", "a blur", "a red car flying")
    with pytest.raises(PromptError, match="--target-prompt"):
        edit_instruction("a red car", "a blur")


def test_a_kontext_checkpoint_loads_as_flux_kontext(folder, engine):
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "FluxKontextPipeline"
    assert type(engine.pipe).__name__ == "FluxKontextPipeline" and engine.family.name == "flux"


def test_kontext_is_the_pipelines_own_edit_of_the_source_image(engine, pair):
    """Our call (source latents, seeded noise, pair size) gives what the pipeline makes from the image itself."""
    method = get_method("kontext")
    sampling = resolve(method, engine.family)[1]
    assert (sampling.steps, sampling.guidance_scale, sampling.k, sampling.phase_scale) == (28, 3.5, 0, 0.0)
    sampling = SamplingConfig(steps=3, guidance_scale=3.5, k=0, amp_scale=0.0, phase_scale=0.0)
    learned = engine.personalize(pair, method, progress=False)
    noise = engine.initial_noise([0, 1], pair)
    ours = method.sample(engine, pair, learned, noise, sampling, progress=False)
    assert ours.shape == noise.shape and not torch.equal(ours[0], ours[1])  # one image per seed

    instruction = method.instruction(pair)
    assert instruction.startswith("Change the image to show the dog drinking water from a mug")
    pipes_own = engine.pipe(
        image=pair.source_image,
        prompt=instruction,
        latents=pack(noise[:1]),
        height=16,
        width=16,
        max_area=16 * 16,
        _auto_resize=False,
        num_inference_steps=3,
        guidance_scale=3.5,
        output_type="latent",
        return_dict=False,
    )[0]
    torch.testing.assert_close(ours[:1], unpack(pipes_own.float(), *noise.shape[-2:]), atol=1e-5, rtol=1e-4)

    other = pair.source_latents.clone()
    pair.source_latents = torch.randn_like(other)
    try:  # the source image is read: another one gives another edit
        moved = method.sample(engine, pair, learned, noise[:1], sampling, progress=False)
    finally:
        pair.source_latents = other
    assert not torch.allclose(moved, ours[:1], atol=1e-4)


def test_generate_with_kontext_writes_a_run_with_kontexts_settings(folder, pair_files, tmp_path, capsys):
    out = tmp_path / "run"
    assert generate(folder, pair_files, out, "--steps", "2", "--seeds", "0", "1") == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    run = config["run"]
    assert run["method"] == "kontext" and run["sampling"]["steps"] == 2  # the user's flag wins
    assert run["sampling"]["guidance_scale"] == 3.5 and run["sampling"]["phase_scale"] == 0.0
    assert json.loads((out / "adapter" / "personalization.json").read_text())["weights"] == "none"
    images = [np.asarray(Image.open(out / f"seed_{seed}.png")) for seed in (0, 1)]
    assert images[0].shape == (16, 16, 3) and not np.array_equal(images[0], images[1])


@pytest.mark.parametrize("family", ["flux", "sd"])
def test_kontext_on_another_model_is_a_one_line_error_naming_the_checkpoint(
    family, pair_files, tmp_path_factory, tiny_model, capsys
):
    if family == "flux":
        model = save_random_pipeline("flux", tmp_path_factory.mktemp("plain-flux"))
    else:
        model = tiny_model
    assert generate(model, pair_files, tmp_path_factory.mktemp("out") / "x") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (
        "--method kontext needs a FLUX.1 Kontext checkpoint (--model black-forest-labs/FLUX.1-Kontext-dev)"
        in err
    )


def test_kontext_refuses_guidance_flags_that_contradict_it(folder, pair_files, tmp_path, capsys):
    assert generate(folder, pair_files, tmp_path / "x", "--phase-scale", "0.2") == 2
    assert "contradicts --method kontext" in capsys.readouterr().err


def test_imposter_runs_on_a_kontext_checkpoint_at_the_pairs_size(engine, pair):
    """ImPoster through FluxKontextPipeline (no image to edit): max_area keeps the pair's size, not 1024 x 1024."""
    learned = engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=2), progress=False)
    sampling = SamplingConfig(steps=3, k=1, amp_scale=0.05, phase_scale=0.05)
    images = engine.generate(pair, learned, seeds=[0], sampling=sampling, progress=False)
    assert images[0].size == (16, 16)
