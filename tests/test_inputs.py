"""Bad input gets a clear error or warning that names the problem and the fix."""

import warnings

import pytest
from PIL import Image

from imposter.config import FinetuneConfig, SamplingConfig
from imposter.errors import ConfigError, InputImageError, ModelLoadError
from imposter.images import fit_image, load_image
from imposter.methods import get_method
from imposter.models import load_pipeline
from imposter.testing import random_image


def test_missing_file(tmp_path):
    with pytest.raises(InputImageError, match="source image not found"):
        load_image(tmp_path / "nope.png", "source")


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text")
    with pytest.raises(InputImageError, match="not a readable image"):
        load_image(path, "driving")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(InputImageError, match="is a folder"):
        load_image(tmp_path, "source")


@pytest.mark.parametrize(
    "mode, words", [("L", "grayscale"), ("RGBA", "transparency"), ("CMYK", "CMYK"), ("LA", "transparency")]
)
def test_non_rgb_images_are_converted_with_a_warning(tmp_path, mode, words):
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    random_image(path, mode=mode)
    with pytest.warns(UserWarning, match=words):
        image = load_image(path, "source")
    assert image.mode == "RGB" and image.size == (64, 64)


def test_transparent_pixels_become_black(tmp_path):
    Image.new("RGBA", (40, 40), (255, 255, 255, 0)).save(tmp_path / "clear.png")
    with pytest.warns(UserWarning):
        image = load_image(tmp_path / "clear.png")
    assert image.getpixel((5, 5)) == (0, 0, 0)


def test_tiny_image_is_an_error(tmp_path):
    random_image(tmp_path / "tiny.png", size=(20, 64))
    with pytest.raises(InputImageError, match="at least 32 pixels"):
        load_image(tmp_path / "tiny.png", "source")


def test_rgb_image_loads_silently(tmp_path):
    random_image(tmp_path / "ok.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(tmp_path / "ok.png").mode == "RGB"


@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_fit_makes_the_requested_size(fit):
    wide = random_image(size=(120, 60))
    out = fit_image(wide, 64, 64, fit)
    assert out.size == (64, 64)
    corner = out.getpixel((0, 0))
    assert (corner == (0, 0, 0)) == (fit == "pad")


def test_prompt_over_the_tokenizer_limit_warns_that_it_is_truncated(engine):
    long_prompt = "a dog " + "very " * 30 + "happy"
    with pytest.warns(UserWarning, match="truncated"):
        engine.prepare(random_image(), "a dog", random_image(), "a cat dancing", target_prompt=long_prompt)


def test_k_larger_than_steps():
    with pytest.raises(ConfigError, match="--k 60 must be between 0 and the number of steps"):
        SamplingConfig(k=60, steps=50).validate()


@pytest.mark.parametrize("field", ["amp_scale", "phase_scale"])
def test_negative_scales(field):
    with pytest.raises(ConfigError, match="must be >= 0"):
        SamplingConfig(**{field: -1.0}).validate()


def test_negative_train_steps():
    with pytest.raises(ConfigError, match="--train-steps"):
        FinetuneConfig(steps=-1).validate()


def test_unknown_method():
    with pytest.raises(ConfigError, match="unknown method 'dreambooth'; choose one of: imposter"):
        get_method("dreambooth")


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_pipeline(str(tmp_path / "models" / "nope"), "cpu")


def test_folder_that_is_not_a_pipeline(tmp_path):
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        load_pipeline(str(tmp_path), "cpu")


def test_unreachable_hub_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="could not load 'someone/not-a-model'"):
        load_pipeline("someone/not-a-model", "cpu")
