import dataclasses

import pytest
import torch
from tiny_models import random_items, save_tiny_clip

from imposter.errors import MetricUnavailable
from imposter.metrics.clip import ClipScore


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def metric(clip_folder):
    return ClipScore(str(clip_folder), batch_size=4)


def test_score_is_the_cosine_behind_clip_logits(metric):
    items = random_items(3)
    prompts = [item.target_prompt for item in items]
    inputs = metric.tokenizer(prompts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    pixels = metric.image_processor(images=[item.generated for item in items], return_tensors="pt")
    with torch.no_grad():
        logits = metric.model(**inputs, pixel_values=pixels["pixel_values"]).logits_per_image
    expected = (logits.diagonal() / metric.model.logit_scale.exp()).tolist()
    got = [scores["clip"] for scores in metric.score(items)]
    assert got == pytest.approx(expected, abs=1e-5)
    assert all(-1.0 <= value <= 1.0 for value in got)


def test_scores_do_not_depend_on_batch_size(clip_folder, metric):
    items = random_items(6)
    one_by_one = ClipScore(str(clip_folder), batch_size=1).score(items)
    assert [s["clip"] for s in one_by_one] == pytest.approx(
        [s["clip"] for s in metric.score(items)], abs=1e-5
    )


def test_the_prompt_changes_the_score(metric):
    item = random_items(1)[0]
    other = dataclasses.replace(item, target_prompt="zzzz qqqq")
    assert metric.score([item])[0]["clip"] != pytest.approx(metric.score([other])[0]["clip"], abs=1e-6)


def test_prompts_past_the_token_limit_are_cut(metric):
    # the tiny text model takes 16 tokens: BOS, 14 characters, EOS
    item = random_items(1)[0]
    long = dataclasses.replace(item, target_prompt="abcdefghijklmnopqrstuvwxyz")
    longer = dataclasses.replace(item, target_prompt="abcdefghijklmnopqrstuvwxyz and more")
    assert metric.score([long]) == metric.score([longer])


def test_missing_model_is_unavailable(tmp_path):
    with pytest.raises(MetricUnavailable, match="cannot load CLIP model"):
        ClipScore(str(tmp_path / "no-such-model"))
