"""imposter-subject and subject-lora: the LoRA learns the source pair alone; ImPoster's sampling stays."""

import pytest

from imposter import FinetuneConfig, SamplingConfig
from imposter.errors import ConfigError
from imposter.methods import check_compatible, get_method
from imposter.testing import random_image


def test_the_subject_lora_learns_the_source_pair_alone(engine, monkeypatch):
    import imposter.methods.imposter as module

    seen = []
    original = module.finetune_lora

    def spy(unet, scheduler, latents, conditioning, *args, **kwargs):
        seen.append((latents.clone(), conditioning.embeds.clone()))
        return original(unet, scheduler, latents, conditioning, *args, **kwargs)

    monkeypatch.setattr(module, "finetune_lora", spy)
    pair = engine.prepare(
        random_image(seed=1), "a dog", random_image(seed=2), "a cat drinking water from a mug"
    )
    learned = engine.personalize(pair, "imposter-subject", FinetuneConfig(steps=2), progress=False)
    engine.personalize(pair, "imposter-guided", FinetuneConfig(steps=2), progress=False)
    (subject_latents, subject_text), (both_latents, _) = seen
    assert subject_latents.shape[0] == 1 and both_latents.shape[0] == 2
    assert subject_latents.equal(pair.source_latents) and subject_text.equal(
        engine.conditioning(pair, "a dog").embeds
    )
    # one fine-tune for both variants (and pose-control); never mixed with ImPoster's LoRA on both pairs
    for name in ("subject-lora", "pose-control"):
        check_compatible(get_method(name), learned.method)
    with pytest.raises(ConfigError, match="--method imposter-subject"):
        check_compatible(get_method("imposter-guided"), learned.method)
    # ImPoster's sampling: K steps of the driving caption and the guidance, on the subject LoRA
    sampling = SamplingConfig(steps=4, k=2, amp_scale=0.05, phase_scale=0.05)
    images = engine.generate(pair, learned, [0], sampling, progress=False)
    plain = engine.generate(pair, learned, [0], sampling, method="subject-lora", progress=False)
    assert images[0].size == plain[0].size and images[0].tobytes() != plain[0].tobytes()
    assert get_method("subject-lora").fixed_sampling == {"k": 0, "amp_scale": 0.0, "phase_scale": 0.0}
