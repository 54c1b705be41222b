import pytest
from bench_settings import FAST

from imposter.toyworld.pairs import write_pairs


@pytest.fixture(scope="session")
def toy_pairs(tmp_path_factory):
    """A pairs CSV of two toy-world pairs, with ground-truth targets."""
    return write_pairs(2, 0, tmp_path_factory.mktemp("toy-pairs"))


@pytest.fixture
def bench_args(tiny_model, toy_pairs):
    """``imposter bench`` arguments for the tiny model and the toy pairs, minus --out."""

    def args(out, *extra):
        return [
            "bench", "--pairs", str(toy_pairs), "--model", str(tiny_model), "--device", "cpu",
            "--methods", "imposter-guided", "baseline++", "--seeds", "0", "1", *FAST, "--out", str(out), *extra,
        ]  # fmt: skip

    return args
