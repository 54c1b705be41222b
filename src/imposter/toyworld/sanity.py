"""Text-to-image sanity of a toy pipeline: does "a red robot waving" draw a red robot waving?

Each caption is generated ``samples`` times (DDIM 50, CFG 7.5, as ImPoster samples); the figure's
subject and action are read by the world's classifier (:mod:`imposter.toyworld.classifier`).
Accuracies are reported separately for the pretraining combinations and the held-out ones.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from tqdm.auto import tqdm

from ..engine import ImPoster
from ..sampling import denoise
from .classifier import LABELS_ACTION, ToyClassifier, predict
from .world import ACTIONS, SUBJECT_NAMES, caption, is_heldout


def sanity_check(
    pipe, classifier: ToyClassifier, samples: int = 4, seed: int = 0, batch: int = 64, progress: bool = True
) -> dict:
    """Subject and action accuracies of text-to-image generations, on train and held-out combinations."""
    engine = ImPoster(pipe)
    uncond = engine.encode_prompt("")
    jobs = [(s, a) for s in SUBJECT_NAMES for a in (None, *ACTIONS)] * samples
    latent_size = int(pipe.unet.config.sample_size)
    hits: dict[str, list[int]] = defaultdict(list)
    per_action: dict[str, list[int]] = defaultdict(list)
    generator = torch.Generator().manual_seed(seed)
    for start in tqdm(range(0, len(jobs), batch), desc="sanity check", disable=not progress, leave=False):
        chunk = jobs[start : start + batch]
        conds = torch.cat([engine.encode_prompt(caption(s, a)) for s, a in chunk])
        noise = torch.randn(
            (len(chunk), pipe.unet.config.in_channels, latent_size, latent_size), generator=generator
        )
        latents = denoise(
            pipe.unet, pipe.scheduler, noise, lambda i, c=conds: c, uncond, 7.5, 50, progress=False
        )
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
