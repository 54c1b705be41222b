"""The random pipelines tests and benchmarks share: every family's recipe builds a pipeline that loads back."""

from dataclasses import replace

import pytest
import torch
from diffusers import DiffusionPipeline

from imposter.testing import PIPELINES, TINY_SD, save_random_pipeline, sd_components


@pytest.mark.parametrize("family", sorted(PIPELINES))
def test_each_family_saves_a_pipeline_that_loads_as_its_class(family, tmp_path):
    folder = save_random_pipeline(family, tmp_path)
    loaded = DiffusionPipeline.from_pretrained(folder)
    assert type(loaded).__name__ == PIPELINES[family].pipeline_class
    saved = sd_components(tmp_path / "again")["unet"].state_dict()  # same seed: same weights
    assert all(torch.equal(value, loaded.unet.state_dict()[name]) for name, value in saved.items())


def test_a_shape_changes_only_its_model_and_seeds_change_weights(tmp_path):
    tiny = sd_components(tmp_path / "a")
    narrow = sd_components(tmp_path / "b", replace(TINY_SD, unet_channels=(8, 16)))
    assert narrow["unet"].config.block_out_channels == (8, 16)
    for name in ("vae", "text_encoder"):  # each model is seeded on its own
        first, second = tiny[name].state_dict(), narrow[name].state_dict()
        assert all(torch.equal(first[key], second[key]) for key in first)
    other = sd_components(tmp_path / "c", seed=1)
    assert not torch.equal(tiny["unet"].conv_in.weight, other["unet"].conv_in.weight)
