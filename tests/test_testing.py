"""The random pipelines tests and benchmarks share: every recipe builds a pipeline that loads back."""

from dataclasses import replace

import pytest
import torch
from diffusers import DiffusionPipeline

from imposter.families import FAMILY_NAMES, PIPELINE_FAMILIES
from imposter.testing import PIPELINES, TINY_SD, random_components, save_random_pipeline


def test_every_family_has_a_recipe_under_its_name_building_its_pipeline_class():
    for family in FAMILY_NAMES:
        assert PIPELINE_FAMILIES[PIPELINES[family].pipeline_class] == family
    assert {PIPELINE_FAMILIES[recipe.pipeline_class] for recipe in PIPELINES.values()} == set(FAMILY_NAMES)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_each_recipe_saves_a_pipeline_that_loads_as_its_class_with_its_weights(name, tmp_path):
    folder = save_random_pipeline(name, tmp_path)
    loaded = DiffusionPipeline.from_pretrained(folder)
    assert type(loaded).__name__ == PIPELINES[name].pipeline_class
    built = random_components(name, tmp_path / "again")  # same seed: same weights
    models = {part: model for part, model in built.items() if isinstance(model, torch.nn.Module)}
    assert len(models) >= 3
    for part, model in models.items():
        saved = loaded.components[part].state_dict()
        assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items()), part


def test_a_shape_changes_only_its_model_and_seeds_change_weights(tmp_path):
    tiny = random_components("sd", tmp_path / "a")
    narrow = random_components("sd", tmp_path / "b", replace(TINY_SD, unet_channels=(8, 16)))
    assert narrow["unet"].config.block_out_channels == (8, 16)
    for name in ("vae", "text_encoder"):  # each model is seeded on its own
        first, second = tiny[name].state_dict(), narrow[name].state_dict()
        assert all(torch.equal(first[key], second[key]) for key in first)
    other = random_components("sd", tmp_path / "c", seed=1)
    assert not torch.equal(tiny["unet"].conv_in.weight, other["unet"].conv_in.weight)
