"""Captions: validation, the composed target prompt, and the tokenizer-length check."""

from __future__ import annotations

import re
import warnings

from .errors import ImposterWarning, PromptError, quoted

# Words that start the action part of a caption ("a woman *playing* violin", "a cat *with* a hat").
_LINKS = {
    "is", "are", "was", "with", "in", "on", "at", "under", "over", "near", "by", "while", "and",
    "holding", "wearing", "next", "inside", "beside", "behind",
}  # fmt: skip
# Nouns ending in -ing that are not the action's verb.
_ING_NOUNS = {
    "king", "ring", "wing", "thing", "string", "sibling", "ceiling", "building", "painting",
    "duckling", "darling", "pudding", "viking", "spring", "sling", "earring", "offspring", "morning",
    "evening", "clothing", "ping", "ding", "bling", "swing", "sing",
}  # fmt: skip


def check_caption(caption: str, name: str) -> str:
    """Return the caption stripped; an empty one is a PromptError naming the setting ``name`` (``$source_prompt``)."""
    if caption is None or not caption.strip():
        raise PromptError(f"{name} is empty; describe the image in a few words, e.g. 'a dog'")
    return " ".join(caption.split())


def split_subject(caption: str) -> tuple[str, str]:
    """Split "a cat drinking water" into ("a cat", "drinking water"); PromptError if no action is found."""
    words = caption.split()
    for i, word in enumerate(words[1:], start=1):
        bare = re.sub(r"[^a-z-]", "", word.lower())
        if bare in _LINKS or (bare.endswith("ing") and len(bare) > 4 and bare not in _ING_NOUNS):
            return " ".join(words[:i]), " ".join(words[i:])
    raise PromptError(
        f"cannot find the action in the driving caption {quoted(caption)} (expected e.g. 'a woman playing violin');"
        " give the target prompt yourself with $target_prompt"
    )


def compose_target_prompt(source_prompt: str, driving_prompt: str) -> str:
    """Replace the driving caption's subject by the source caption: "a dog" + "a cat drinking" -> "a dog drinking"."""
    source = check_caption(source_prompt, "$source_prompt")
    driving = check_caption(driving_prompt, "$driving_prompt")
    _, action = split_subject(driving)
    return f"{source.rstrip('.')} {action}"


_ARTICLES = {"a", "an", "the", "this", "that", "my", "our"}
_BE = {"is", "are", "was", "were"}


def subject_noun(caption: str) -> str:
    """The subject of a caption without its article: "a dog sitting" -> "dog", "an old red car" -> "old red car"."""
    try:
        subject, _ = split_subject(caption)
    except PromptError:  # no action: the whole caption is the subject
        subject = caption
    words = subject.rstrip(".").split()
    return " ".join(words[1:] if len(words) > 1 and words[0].lower() in _ARTICLES else words)


def edit_instruction(source_prompt: str, driving_prompt: str, target_prompt: str | None = None) -> str:
    """An instruction for an image editor given the source image: the source subject doing the driving action.

    "a dog" + "a cat drinking water from a mug" -> "Change the image to show the dog drinking water from a
    mug, keeping the dog's identity and appearance." (the source subject without its article, then the driving
    caption's action as :func:`split_subject` finds it, a leading "is"/"are" dropped). When the driving caption
    has no action it can find, the target prompt is shown instead (PromptError if there is none).
    """
    source = check_caption(source_prompt, "$source_prompt")
    subject = subject_noun(source)
    try:
        _, action = split_subject(check_caption(driving_prompt, "$driving_prompt"))
        words = action.rstrip(".").split()
        if len(words) > 1 and words[0].lower() in _BE:
            words = words[1:]
        shown = f"the {subject} {' '.join(words)}"
    except PromptError:
        if target_prompt is None:
            raise
        shown = check_caption(target_prompt, "$target_prompt").rstrip(".")
    return f"Change the image to show {shown}, keeping the {subject}'s identity and appearance."


def check_token_length(tokenizer, prompt: str, name: str) -> None:
    """Warn when ``prompt`` is longer than the tokenizer's limit, saying it will be truncated."""
    limit = tokenizer.model_max_length
    count = len(tokenizer(prompt, truncation=False).input_ids)
    if count > limit:
        kept = tokenizer.decode(
            tokenizer(prompt, truncation=True, max_length=limit).input_ids, skip_special_tokens=True
        )
        warnings.warn(
            ImposterWarning(
                f"{name} has {count} tokens, more than this model's limit of {limit}; it is truncated to {quoted(kept)}"
            ),
            stacklevel=2,
        )
