"""Captions: the composed target prompt and its errors."""

import pytest

from imposter.errors import PromptError
from imposter.prompts import check_caption, compose_target_prompt, split_subject


@pytest.mark.parametrize(
    "source, driving, target",
    [
        ("a dog", "a cat drinking water from a mug", "a dog drinking water from a mug"),
        ("a monkey", "a woman playing violin", "a monkey playing violin"),
        ("a teddy bear", "a man reading a book", "a teddy bear reading a book"),
        ("a plush rabbit", "a woman doing yoga", "a plush rabbit doing yoga"),
        ("a robot", "a spotted cat raising both arms", "a robot raising both arms"),
        ("an alien", "a king sitting on a throne", "an alien sitting on a throne"),
        ("a dog", "a woman with a guitar", "a dog with a guitar"),
        ("A fox.", "A man   dancing", "A fox dancing"),
    ],
)
def test_target_prompt_replaces_the_driving_subject(source, driving, target):
    assert compose_target_prompt(source, driving) == target


def test_caption_without_an_action_asks_for_a_target_prompt():
    with pytest.raises(PromptError, match="--target-prompt"):
        split_subject("a red car")


@pytest.mark.parametrize("caption", ["", "   ", None])
def test_empty_caption_is_an_error(caption):
    with pytest.raises(PromptError, match="--source-prompt is empty"):
        check_caption(caption, "--source-prompt")
