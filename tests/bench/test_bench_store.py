import json
from dataclasses import replace

import pytest

from imposter.bench.store import CONFIG_FILE, prepare_output, remember_metrics, settings_conflict
from imposter.errors import ConfigError

SETTINGS = {
    "model": "toy",
    "seeds": [0],
    "methods": {"imposter-guided": {"sampling": {"k": 5}}, "baseline++": {"sampling": {"k": 0}}},
}


def test_seeds_and_methods_may_grow_but_shared_settings_may_not_change():
    grown = {**SETTINGS, "seeds": [0, 1], "methods": {**SETTINGS["methods"], "hiper": {}}}
    assert settings_conflict(SETTINGS, grown) is None
    assert settings_conflict(SETTINGS, {**SETTINGS, "model": "other"}) == "model: 'toy' there, 'other' now"
    changed = {**SETTINGS, "methods": {"imposter-guided": {"sampling": {"k": 2}}}}
    assert settings_conflict(SETTINGS, changed) == "methods.imposter-guided.sampling.k: 5 there, 2 now"


def test_prepare_output_refuses_or_replaces_and_remembers_every_method(tmp_path):
    prepare_output(
        tmp_path, {**SETTINGS, "methods": {"imposter-guided": {"sampling": {"k": 5}}}}, overwrite=False
    )
    prepare_output(tmp_path, {**SETTINGS, "methods": {"baseline++": {"sampling": {"k": 0}}}}, overwrite=False)
    stored = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert stored["settings"]["methods"] == SETTINGS["methods"] and "python" in stored["environment"]
    (tmp_path / "records").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    other = {
        **SETTINGS,
        "methods": {"imposter-guided": {"sampling": {"k": 3}}},
    }  # imposter is still remembered
    with pytest.raises(ConfigError, match="holds a bench with other settings .*--overwrite"):
        prepare_output(tmp_path, other, overwrite=False)
    prepare_output(tmp_path, other, overwrite=True)
    assert not (tmp_path / "records").exists() and (tmp_path / "notes.txt").exists()
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["settings"]["methods"] == other["methods"]


def test_metrics_are_remembered_once_they_ran_and_then_keep_their_model(tmp_path):
    asked = {**SETTINGS, "metrics": {"phase": {}, "sscd": {"model": None}}}
    prepare_output(tmp_path, asked, overwrite=False)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["settings"]["metrics"] == {}
    remember_metrics(tmp_path, {"phase": {}})  # sscd could not load: any model may score it later
    with_model = {**SETTINGS, "metrics": {"phase": {}, "sscd": {"model": "sscd.pt"}}}
    prepare_output(tmp_path, with_model, overwrite=False)
    remember_metrics(tmp_path, {"sscd": {"model": "sscd.pt"}})
    stored = json.loads((tmp_path / CONFIG_FILE).read_text())["settings"]
    assert stored["metrics"] == with_model["metrics"]
    assert settings_conflict(stored, {**SETTINGS, "metrics": {"clip": {"model": None}}}) is None
    other = {**SETTINGS, "metrics": {"sscd": {"model": "other.pt"}}}
    assert settings_conflict(stored, other) == "metrics.sscd.model: 'sscd.pt' there, 'other.pt' now"


def test_a_retrained_bundled_model_is_another_model_to_the_bench(tmp_path, monkeypatch):
    from imposter import models, plugins
    from imposter.bench.config import BenchConfig, MethodSetup

    folder = tmp_path / "checkpoint"
    (folder / "vae").mkdir(parents=True)
    (folder / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights 1")
    monkeypatch.setitem(plugins.NAMED_MODELS, "toy", replace(plugins.named_model("toy"), folder=folder))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("pair_id,source_image,source_prompt,driving_image,driving_prompt\n")
    bench = BenchConfig(pairs=str(pairs), methods=(MethodSetup.of("baseline++"),), seeds=(0,))
    before = bench.settings([])
    (folder / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(
        b"weights 2"
    )  # same size, new weights
    after = bench.settings([])
    assert settings_conflict(before, after).startswith("model_weights: ")
    assert models.bundled_weights("some/hub-model") is None
