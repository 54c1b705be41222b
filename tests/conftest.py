import os
import sys
from pathlib import Path

import pytest
import torch

from imposter.testing import random_image, save_random_pipeline

# Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP threads fight each other.
torch.set_num_threads(int(os.environ.get("IMPOSTER_TEST_THREADS", "1")))

sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Folder of a tiny random Stable Diffusion pipeline, saved once per test session."""
    return save_random_pipeline("sd", tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def pair_files(tmp_path_factory) -> dict:
    """A source and a driving image on disk."""
    folder = tmp_path_factory.mktemp("pair")
    random_image(folder / "source.png", seed=1)
    random_image(folder / "driving.png", seed=2)
    return {"source": folder / "source.png", "driving": folder / "driving.png"}


@pytest.fixture(scope="session")
def engine(tiny_model):
    from imposter import ImPoster

    return ImPoster.from_pretrained(str(tiny_model), device="cpu")
