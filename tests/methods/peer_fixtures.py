"""Fixtures for the peer-method tests (``pytest_plugins``: a conftest.py here would shadow tests/bench's).

A prepared pair, an SD-2-style pipeline, and checks that the frozen model is untouched.
"""

from dataclasses import replace

import pytest
import torch

from imposter import ImPoster
from imposter.testing import TINY_SD, random_image, save_random_pipeline

DRIVING_PROMPT = "a cat drinking water from a mug"


@pytest.fixture(scope="session")
def peer_pair(engine):
    """A dog (source) and a cat drinking (driving) on the tiny pipeline."""
    return engine.prepare(random_image(seed=1), "a dog", random_image(seed=2), DRIVING_PROMPT)


@pytest.fixture(scope="session")
def bang_engine(tmp_path_factory):
    """A tiny pipeline whose tokenizer pads with "!" as SD 2.x does."""
    return ImPoster.from_pretrained(
        str(save_random_pipeline("sd", tmp_path_factory.mktemp("bang"), replace(TINY_SD, pad_token="!"))),
        device="cpu",
    )


@pytest.fixture(scope="session")
def bang_pair(bang_engine):
    return bang_engine.prepare(random_image(seed=1), "a dog", random_image(seed=2), DRIVING_PROMPT)


class ModelSnapshot:
    """Every weight of the UNet, VAE and text encoder (cloned), their requires_grad flags and the UNet's processors."""

    def __init__(self, engine):
        self.engine = engine
        self.modules = {
            "unet": engine.denoiser,
            "vae": engine.pipe.vae,
            "text_encoder": engine.pipe.text_encoder,
        }
        self.weights = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in self.modules.items()}
        self.flags = {n: [p.requires_grad for p in m.parameters()] for n, m in self.modules.items()}
        self.processors = dict(engine.denoiser.attn_processors)

    def assert_unchanged(self) -> None:
        """The frozen model is byte for byte as it was, with no gradients, its flags and its processors restored."""
        for name, module in self.modules.items():
            before, after = self.weights[name], module.state_dict()
            assert before.keys() == after.keys(), name
            for key in before:
                assert before[key].dtype == after[key].dtype and torch.equal(before[key], after[key]), (
                    name,
                    key,
                )
            assert [p.requires_grad for p in module.parameters()] == self.flags[name], name
            assert all(p.grad is None for p in module.parameters()), name
        processors = self.engine.denoiser.attn_processors
        assert processors.keys() == self.processors.keys()
        assert all(processors[k] is self.processors[k] for k in processors)
        assert not getattr(self.engine.denoiser, "peft_config", None)


@pytest.fixture
def snapshot():
    """``snapshot(engine)`` records the model; ``.assert_unchanged()`` checks it later."""
    return ModelSnapshot


@pytest.fixture
def adam_spy(monkeypatch):
    """Records the parameters of every torch.optim.Adam created."""
    created: list[list[torch.Tensor]] = []
    original = torch.optim.Adam

    def spy(params, *args, **kwargs):
        params = list(params)
        created.append(params)
        return original(params, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", spy)
    return created
