import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import TinySscd, random_image, random_items, save_tiny_sscd

from imposter.errors import MetricUnavailable
from imposter.metrics.sscd import SscdScore, sscd_preprocess


@pytest.fixture(scope="module")
def sscd_path(tmp_path_factory):
    return save_tiny_sscd(tmp_path_factory.mktemp("sscd") / "tiny_sscd.torchscript.pt")


@pytest.fixture(scope="module")
def metric(sscd_path):
    return SscdScore(sscd_path, batch_size=4)


# (width, height) -> (height, width); torchvision truncates the long side: 288 * 451 / 300 = 432.96 -> 432
@pytest.mark.parametrize(
    ("size", "expected"), [((512, 512), (288, 288)), ((400, 300), (288, 384)), ((300, 451), (432, 288))]
)
def test_preprocess_resizes_the_short_side_to_288_like_torchvision(size, expected):
    assert sscd_preprocess(random_image(0, size)).shape == (3, *expected)


def test_preprocess_normalizes_with_imagenet_statistics():
    pixels = sscd_preprocess(Image.new("RGB", (300, 300), (255, 128, 0)))
    expected = (np.array([1.0, 128 / 255, 0.0]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert pixels.mean(dim=(1, 2)).numpy() == pytest.approx(expected, abs=1e-5)


def test_the_source_itself_scores_one(metric):
    items = [dataclasses.replace(item, generated=item.source) for item in random_items(3, (48, 32))]
    assert [s["sscd"] for s in metric.score(items)] == pytest.approx([1.0] * 3, abs=1e-5)


def test_score_is_the_cosine_of_the_model_descriptors(metric):
    item = random_items(1, (40, 60))[0]
    with torch.no_grad():
        descriptors = metric.model(
            torch.stack([sscd_preprocess(item.generated), sscd_preprocess(item.source)])
        )
    expected = torch.nn.functional.cosine_similarity(descriptors[0], descriptors[1], dim=0).item()
    assert metric.score([item])[0]["sscd"] == pytest.approx(expected, abs=1e-6)


def test_images_of_mixed_sizes_score_as_one_by_one(sscd_path, metric):
    sizes = [(40, 40), (64, 40), (40, 40), (30, 50), (40, 40)]
    items = [
        dataclasses.replace(
            random_items(1)[0], generated=random_image(i, size), source=random_image(9 - i, size)
        )
        for i, size in enumerate(sizes)
    ]
    one_by_one = SscdScore(sscd_path, batch_size=1).score(items)
    assert [s["sscd"] for s in metric.score(items)] == pytest.approx(
        [s["sscd"] for s in one_by_one], abs=1e-5
    )


def test_no_model_path_says_where_to_get_one():
    with pytest.raises(MetricUnavailable, match="sscd-copy-detection.*--sscd-model PATH"):
        SscdScore(None)


def test_missing_file_is_unavailable(tmp_path):
    with pytest.raises(MetricUnavailable, match="does not exist.*--sscd-model PATH"):
        SscdScore(tmp_path / "sscd_disc_mixup.torchscript.pt")


def test_a_file_that_is_not_torchscript_is_unavailable(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(TinySscd().state_dict(), path)
    with pytest.raises(MetricUnavailable, match="not a TorchScript model"):
        SscdScore(path)
