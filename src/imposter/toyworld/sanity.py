"""Text-to-image sanity of a toy pipeline: does "a robot waving" draw a robot waving?

Each caption is generated ``samples`` times as ImPoster samples (SD: DDIM 50, CFG 7.5; FLUX.1: the family's
own sampler, 28 Euler steps, no CFG); the figure's subject and action are read by the world's classifier
(:mod:`imposter.toyworld.classifier`).
Accuracies are reported separately for the pretraining combinations and the held-out ones.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from ..config import SamplingConfig
from ..engine import ImPoster
from ..families.base import Conditioning, SamplingPlan
from .classifier import LABELS_ACTION, ToyClassifier, predict
from .world import ACTIONS, SUBJECT_NAMES, caption, is_heldout, with_article


def sanity_check(
    pipe,
    classifier: ToyClassifier,
    samples: int = 4,
    seed: int = 0,
    batch: int = 64,
    progress: bool = True,
    actions: Sequence[str | None] = (None, *ACTIONS),
    names: Mapping[str, str] | None = None,
) -> dict:
    """Subject and action accuracies of text-to-image generations, on train and held-out combinations;
    every subject with each of ``actions`` (None: standing, the subject's caption alone)."""
    engine = ImPoster(pipe)
    family = engine.family
    uncond = family.encode(pipe, "")
    jobs = [(s, a) for s in SUBJECT_NAMES for a in actions] * samples
    latent_size = family.native_size(pipe) // family.vae_scale_factor(pipe)
    hits: dict[str, list[int]] = defaultdict(list)
    per_action: dict[str, list[int]] = defaultdict(list)
    generator = torch.Generator().manual_seed(seed)
    for start in tqdm(range(0, len(jobs), batch), desc="sanity check", disable=not progress, leave=False):
        chunk = jobs[start : start + batch]
        texts = [caption(s, a) for s, a in chunk]
        if (
            names
        ):  # a model trained on other captions for the classes (the v2-trained toy FLUX: "a red robot")
            texts = [
                with_article(names[s]) + text[len(with_article(s)) :]
                for text, (s, _) in zip(texts, chunk, strict=True)
            ]
        conds = Conditioning.cat([family.encode(pipe, text) for text in texts])
        noise = torch.randn(
            (len(chunk), family.latent_channels(pipe), latent_size, latent_size), generator=generator
        )
        sampling = SamplingConfig(**family.sampling_defaults)
        plan = SamplingPlan(lambda i, c=conds: c, uncond, sampling, progress=False)
        latents = family.sample(pipe, noise, plan)
        subject_probs, action_probs = predict(classifier, engine.decode(latents))
        for (subject, action), p_subject, p_action in zip(chunk, subject_probs, action_probs, strict=True):
            split = "heldout_" if is_heldout(subject, action) else ""
            action_right = LABELS_ACTION[int(p_action.argmax())] == (action or "standing")
            hits[f"{split}subject"].append(SUBJECT_NAMES[int(p_subject.argmax())] == subject)
            hits[f"{split}action"].append(action_right)
            per_action[action or "standing"].append(action_right)
    result = {f"{key}_accuracy": sum(values) / len(values) for key, values in sorted(hits.items())}
    result["per_action_accuracy"] = {k: sum(v) / len(v) for k, v in sorted(per_action.items())}
    result["samples"] = len(jobs)
    return result


def logged_sanity_check(
    pipe,
    classifier: ToyClassifier,
    samples: int,
    seed: int,
    log: Callable[[str], object],
    progress: bool = True,
) -> tuple[dict, float]:
    """A trainer's final :func:`sanity_check` (none when ``samples`` is 0), said in one log line; returns the
    result and the seconds it took."""
    start = time.perf_counter()
    if samples <= 0:
        return {}, 0.0
    sanity = sanity_check(pipe, classifier, samples=samples, seed=seed, progress=progress)
    log(
        "sanity (train combinations): subject {subject_accuracy:.3f}, action {action_accuracy:.3f}; "
        "held-out combinations: subject {heldout_subject_accuracy:.3f}, "
        "action {heldout_action_accuracy:.3f}".format(**sanity)
    )
    return sanity, time.perf_counter() - start
