"""Named models: the toy world plugs its checkpoints in by name, and any package can register one."""

from pathlib import Path

import imposter
from imposter import models, plugins
from imposter.errors import ImposterWarning
from imposter.plugins import NamedModel, named_model, register_model


def test_the_toy_world_names_its_bundled_checkpoints():
    toy, toy_flux = named_model("toy"), named_model("toy-flux")
    assert toy.folder == Path(imposter.__file__).parent / "toyworld" / "checkpoint"
    assert (toy_flux.folder / "model_index.json").is_file() and toy.default_metrics == ("toy", "phase")
    notice = str(ImposterWarning(toy.vocabulary_notice(["a lion juggling"])))  # as the CLI shows it
    assert toy_flux.vocabulary_notice is None and notice.startswith(
        "the toy model (the default --model) knows only its world, not 'juggling', 'lion'"
    )
    assert named_model("org/model") is None and models.model_source("~/x") == Path("~/x").expanduser()


def test_a_registered_model_resolves_like_the_toy_one(tmp_path, monkeypatch):
    monkeypatch.setattr(plugins, "NAMED_MODELS", dict(plugins.NAMED_MODELS))
    register_model(NamedModel("mine", tmp_path, add_ons=("extra",)))
    for part in ("unet", "extra"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "model.safetensors").write_bytes(b"weights")
    digest = models.bundled_weights("mine")
    (tmp_path / "extra" / "model.safetensors").write_bytes(b"retrained add-on")
    assert models.model_source("mine") == tmp_path and models.bundled_weights("mine") == digest
    (tmp_path / "unet" / "model.safetensors").write_bytes(b"retrained")
    assert models.bundled_weights("mine") != digest
