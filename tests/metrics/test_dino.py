import dataclasses

import pytest
import torch
import torch.nn.functional as F
from tiny_models import random_image, random_items, save_tiny_dino_vit, save_tiny_dinov2

from imposter.errors import ConfigError, MetricUnavailable
from imposter.metrics.dino import DinoScore


@pytest.fixture(scope="module")
def authors(tmp_path_factory):
    return DinoScore(str(save_tiny_dinov2(tmp_path_factory.mktemp("dinov2"))), batch_size=4)


@pytest.fixture(scope="module")
def dreambooth(tmp_path_factory):
    folder = save_tiny_dino_vit(tmp_path_factory.mktemp("dino-vit"))
    return DinoScore(str(folder), variant="dreambooth", batch_size=4)


@pytest.mark.parametrize("variant", ["authors", "dreambooth"])
def test_the_source_itself_scores_one(variant, request):
    metric = request.getfixturevalue(variant)
    items = [dataclasses.replace(item, generated=item.source) for item in random_items(3)]
    assert [s["dino"] for s in metric.score(items)] == pytest.approx([1.0] * 3, abs=1e-5)


def test_authors_variant_compares_all_tokens_flattened(authors):
    images = [random_image(0), random_image(1)]
    features = authors.embed(images)
    assert features.shape == (2, 17 * 8)  # (1 CLS + 4 x 4 patches) tokens x hidden 8
    pixels = authors.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hidden = authors.model(pixel_values=pixels).last_hidden_state
    expected = F.cosine_similarity(hidden[0].reshape(-1), hidden[1].reshape(-1), dim=0)
    item = dataclasses.replace(random_items(1)[0], generated=images[0], source=images[1])
    assert authors.score([item])[0]["dino"] == pytest.approx(expected.item(), abs=1e-6)


def test_dreambooth_variant_compares_the_cls_token(dreambooth):
    images = [random_image(0), random_image(1)]
    pixels = dreambooth.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hidden = dreambooth.model(pixel_values=pixels).last_hidden_state
    assert torch.equal(dreambooth.embed(images), hidden[:, 0])
    assert dreambooth.embed(images).shape == (2, 8)


@pytest.mark.parametrize("variant", ["authors", "dreambooth"])
def test_scores_do_not_depend_on_batch_size(variant, request):
    metric = request.getfixturevalue(variant)
    items = random_items(5)
    batched = [s["dino"] for s in metric.score(items)]
    metric.batch_size = 1
    try:
        one_by_one = [s["dino"] for s in metric.score(items)]
    finally:
        metric.batch_size = 4
    assert one_by_one == pytest.approx(batched, abs=1e-5)


def test_unknown_variant_is_a_config_error():
    with pytest.raises(ConfigError, match="dreambooth"):
        DinoScore(variant="dinov3")


def test_missing_model_is_unavailable(tmp_path):
    with pytest.raises(MetricUnavailable, match="cannot load DINO model"):
        DinoScore(str(tmp_path / "no-such-model"))
