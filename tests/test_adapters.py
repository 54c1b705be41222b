"""Adapters know their method, family and base model; wrong, broken or foreign adapters are one-line errors."""

import json
from dataclasses import replace

import numpy as np
import pytest

from imposter import FinetuneConfig, ImPoster, SamplingConfig
from imposter.cli import main
from imposter.errors import ConfigError, ModelLoadError
from imposter.personalizations import METADATA_FILE
from imposter.testing import TINY_SD, random_image, save_random_pipeline

FAST = SamplingConfig(steps=4, k=1)


@pytest.fixture(scope="module")
def pair(engine):
    return engine.prepare(random_image(seed=1), "a dog", random_image(seed=2), "a cat drinking water")


@pytest.fixture(scope="module")
def adapters(engine, pair, tmp_path_factory):
    """An adapter folder per method: imposter (a LoRA), hiper and adi (text tensors)."""
    folder = tmp_path_factory.mktemp("adapters")
    learned = {
        name: engine.personalize(pair, name, FinetuneConfig(steps=2), progress=False)
        for name in ("imposter-guided", "hiper", "adi")
    }
    return {name: (one, one.save(folder / name)) for name, one in learned.items()}


def pixels(images):
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


def test_the_metadata_holds_method_family_and_base_model(engine, adapters):
    for name, (_, folder) in adapters.items():
        metadata = json.loads((folder / METADATA_FILE).read_text())
        assert (metadata["method"], metadata["family"], metadata["base_model"]) == (name, "sd", engine.model)


@pytest.mark.parametrize("name", ["imposter-guided", "hiper", "adi"])
def test_every_kind_loads_with_its_stored_method_and_gives_the_same_images(engine, pair, adapters, name):
    learned, folder = adapters[name]
    reloaded = engine.load_personalization(folder)  # no method: the stored one
    assert reloaded.method == name and type(reloaded) is type(learned)
    expected = pixels(engine.generate(pair, learned, seeds=[0], sampling=FAST, progress=False))
    again = pixels(engine.generate(pair, reloaded, seeds=[0], sampling=FAST, progress=False))
    assert np.array_equal(expected, again)


def test_a_method_that_cannot_sample_it_is_refused_naming_both(engine, pair, adapters):
    with pytest.raises(ConfigError, match=r"learned by --method hiper.*--method imposter-guided cannot"):
        engine.load_personalization(adapters["hiper"][1], "imposter-guided")
    with pytest.raises(ConfigError, match=r"learned by --method imposter-guided.*--method hiper cannot"):
        engine.generate(pair, adapters["imposter-guided"][0], seeds=[0], sampling=FAST, method="hiper")
    # the methods that share ImPoster's LoRA still sample from it
    assert engine.load_personalization(adapters["imposter-guided"][1], "baseline++").weights == "lora"


def test_the_command_line_takes_the_method_from_the_adapter(
    adapters, tiny_model, pair_files, tmp_path, capsys
):
    args = [
        "generate", "--model", str(tiny_model), "--source", str(pair_files["source"]), "--source-prompt",
        "a dog", "--driving", str(pair_files["driving"]), "--driving-prompt", "a cat drinking water",
        "--steps", "3", "--k", "0", "--quiet", "--adapter", str(adapters["hiper"][1]),
    ]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["run"]["method"] == "hiper"
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "b"), "--method", "imposter-guided"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--method hiper" in err and "--method imposter" in err


def test_an_adapter_of_another_base_model_is_a_one_line_error_naming_it(adapters, tmp_path, pair_files):
    other = ImPoster.from_pretrained(
        str(save_random_pipeline("sd", tmp_path, replace(TINY_SD, unet_channels=(8, 16)))), device="cpu"
    )
    folder = adapters["imposter-guided"][1]
    with pytest.raises(ModelLoadError, match="does not fit this model") as raised:
        other.load_personalization(folder)
    assert str(folder) in str(raised.value) and "\n" not in str(raised.value)
    assert not getattr(other.denoiser, "peft_config", None)  # nothing left behind


def test_an_adapter_saved_as_imposter_before_the_rename_is_read_as_imposter_guided(
    engine, pair, adapters, tmp_path
):
    import shutil

    from imposter.personalizations import METADATA_FILE, recorded_method, stored_method

    old = tmp_path / "old"
    shutil.copytree(adapters["imposter-guided"][1], old)
    record = json.loads((old / METADATA_FILE).read_text())
    (old / METADATA_FILE).write_text(json.dumps({**record, "method": "imposter"}))  # as 2026-12-04 wrote it
    assert stored_method(old) == "imposter-guided" and recorded_method({"method": "imposter"}) == "imposter"
    assert engine.load_personalization(old).method == "imposter-guided"
