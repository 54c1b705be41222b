"""Settings are resolved once per job, in one order: paper < method < family < user < what the method fixes."""

from types import SimpleNamespace

import pytest

from imposter import FinetuneConfig, SamplingConfig
from imposter.cli import main
from imposter.errors import ConfigError
from imposter.families import get_family
from imposter.methods import get_method
from imposter.methods.base import Method
from imposter.settings import resolve


def test_each_layer_replaces_the_one_before():
    method = get_method("imposter-guided")
    method.sampling_defaults = {"steps": 40, "k": 4, "guidance_scale": 6.0}
    method.fixed_sampling = {"eta": 0.5}
    family = SimpleNamespace(finetune_defaults={"rank": 8}, sampling_defaults={"steps": 30, "k": 3})
    finetune, sampling = resolve(method, family, {"steps": 9}, {"steps": 20})
    assert sampling.amp_scale == SamplingConfig().amp_scale  # the paper's
    assert sampling.guidance_scale == 6.0  # the method's over the paper's
    assert sampling.k == 3  # the family's over the method's
    assert sampling.steps == 20  # the user's over the family's
    assert sampling.eta == 0.5  # what the method fixes, over everything
    assert (finetune.steps, finetune.rank, finetune.learning_rate) == (9, 8, FinetuneConfig().learning_rate)


def test_what_a_method_fixes_wins_over_a_whole_config():
    """A whole config (the Python API) carries defaults its author did not choose: no error, the method wins."""
    finetune, sampling = resolve(
        get_method("imposter-authors"),
        get_family("sd"),
        FinetuneConfig(steps=3, learning_rate=1.0),
        SamplingConfig(steps=8, k=2, phase_scale=0.5),
    )
    assert (finetune.steps, finetune.kind, finetune.learning_rate) == (3, "full-authors", 2e-6)
    assert (sampling.steps, sampling.k, sampling.phase_scale) == (8, 6, 0.0)  # K = 6, no guidance


def test_the_familys_defaults_apply_where_the_user_gives_none():
    finetune, sampling = resolve(
        get_method("imposter-guided"), get_family("flux"), sampling={"guidance_scale": 2.5}
    )
    assert (sampling.steps, sampling.guidance_scale) == (28, 2.5)  # FluxPipeline's steps; the user's scale
    assert (finetune.learning_rate, finetune.weight_decay) == (1e-4, 1e-4)  # train_dreambooth_lora_flux.py's
    assert finetune.target_modules is None  # the family's, read when the fine-tune runs
    assert resolve(get_method("imposter-guided"), get_family("sd")) == (FinetuneConfig(), SamplingConfig())


def test_a_setting_named_against_the_method_is_a_one_line_error():
    with pytest.raises(ConfigError) as raised:
        resolve(get_method("baseline++"), get_family("sd"), sampling={"k": 2})
    assert str(raised.value) == (
        "--k 2 contradicts --method baseline++, which uses k = 0; drop the flag or choose --method imposter-guided"
    )
    with pytest.raises(ConfigError, match="--lr 0.1 contradicts --method imposter-authors"):
        resolve(get_method("imposter-authors"), None, {"learning_rate": 0.1})
    assert resolve(get_method("baseline++"), None, sampling={"k": 0})[1].k == 0  # saying it again is fine
    with pytest.raises(ConfigError, match="--k 9 must be between 0 and the number of steps"):
        resolve(get_method("imposter-guided"), None, sampling={"k": 9, "steps": 4})


def test_a_generate_job_checks_the_model_and_the_flags_once(tiny_model, pair_files, tmp_path, monkeypatch):
    calls = []
    for name in ("check_model", "check_flags"):
        real = getattr(Method, name)
        monkeypatch.setattr(
            Method, name, lambda self, arg, real=real, name=name: calls.append(name) or real(self, arg)
        )
    args = [
        "generate", "--model", str(tiny_model), "--source", str(pair_files["source"]), "--source-prompt", "a dog",
        "--driving", str(pair_files["driving"]), "--driving-prompt", "a cat jumping",
        "--method", "imposter-guided", "--train-steps", "1", "--steps", "2", "--k", "1", "--seeds", "0", "1",
        "--batch-size", "1",
    ]  # fmt: skip
    assert main([*args, "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert sorted(calls) == ["check_flags", "check_model"]
