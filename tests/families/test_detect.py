"""The model family comes from the checkpoint's model_index.json, with no flag."""

import json

import pytest

from imposter.errors import ModelLoadError
from imposter.families import family_of
from imposter.models import load_pipeline


def test_an_sd_checkpoint_is_the_sd_family(engine, tiny_model):
    assert (
        json.loads((tiny_model / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    )
    assert engine.family.name == "sd" and family_of(engine.pipe).name == "sd"


def test_an_unsupported_pipeline_is_a_one_line_error_naming_the_folder(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(ModelLoadError, match="is a KandinskyPipeline; imposter runs") as raised:
        load_pipeline(str(tmp_path), "cpu")
    assert str(tmp_path) in str(raised.value) and "\n" not in str(raised.value)


def test_offload_on_the_cpu_is_a_one_line_error(tiny_model):
    from imposter.errors import ConfigError

    with pytest.raises(ConfigError, match="--offload .* needs --device cuda"):
        load_pipeline(str(tiny_model), "cpu", offload=True)


@pytest.mark.parametrize(
    "class_name, family", [("StableDiffusionXLPipeline", "sdxl"), ("FluxPipeline", "flux")]
)
def test_class_names_map_to_families(class_name, family):
    from imposter.families import family_for_class

    assert family_for_class(class_name, "x").name == family
