import json

import pytest

from imposter.bench.store import CONFIG_FILE, prepare_output, remember_metrics, settings_conflict
from imposter.errors import ConfigError

SETTINGS = {
    "model": "toy",
    "seeds": [0],
    "methods": {"imposter": {"sampling": {"k": 5}}, "baseline++": {"sampling": {"k": 0}}},
}


def test_seeds_and_methods_may_grow_but_shared_settings_may_not_change():
    grown = {**SETTINGS, "seeds": [0, 1], "methods": {**SETTINGS["methods"], "hiper": {}}}
    assert settings_conflict(SETTINGS, grown) is None
    assert settings_conflict(SETTINGS, {**SETTINGS, "model": "other"}) == "model: 'toy' there, 'other' now"
    changed = {**SETTINGS, "methods": {"imposter": {"sampling": {"k": 2}}}}
    assert settings_conflict(SETTINGS, changed) == "methods.imposter.sampling.k: 5 there, 2 now"


def test_prepare_output_refuses_or_replaces_and_remembers_every_method(tmp_path):
    prepare_output(tmp_path, {**SETTINGS, "methods": {"imposter": {"sampling": {"k": 5}}}}, overwrite=False)
    prepare_output(tmp_path, {**SETTINGS, "methods": {"baseline++": {"sampling": {"k": 0}}}}, overwrite=False)
    stored = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert stored["settings"]["methods"] == SETTINGS["methods"] and "python" in stored["environment"]
    (tmp_path / "records").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    other = {**SETTINGS, "methods": {"imposter": {"sampling": {"k": 3}}}}  # imposter is still remembered
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
