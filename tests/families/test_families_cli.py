"""imposter generate on SDXL and FLUX.1 checkpoints: the family from the checkpoint, its defaults, its errors."""

import json

import pytest

from imposter.cli import main
from imposter.testing import save_random_pipeline

FAST = ["--method", "imposter-guided", "--train-steps", "2", "--height", "16", "--width", "16", "--quiet"]


@pytest.fixture(scope="module", params=["sdxl", "flux"])
def model(request, tmp_path_factory):
    return save_random_pipeline(request.param, tmp_path_factory.mktemp(request.param))


def generate(model, pair_files, out, *extra):
    return main(
        [
            "generate", "--model", str(model),
            "--source", str(pair_files["source"]), "--source-prompt", "a dog",
            "--driving", str(pair_files["driving"]), "--driving-prompt", "a cat drinking water from a mug",
            "--out", str(out), *FAST, *extra,
        ]
    )  # fmt: skip


def test_generate_writes_the_run_with_the_familys_settings(model, pair_files, tmp_path, capsys):
    family = model.name.removeprefix("tiny-")
    out = tmp_path / "run"
    assert generate(model, pair_files, out, "--steps", "4", "--k", "1", "--no-gradient-checkpointing") == 0
    capsys.readouterr()
    assert {"seed_0.png", "grid.png", "config.json", "adapter"} <= {p.name for p in out.iterdir()}
    run = json.loads((out / "config.json").read_text())["run"]
    assert run["sampling"]["steps"] == 4  # the user's flag wins over the family's default
    assert run["finetune"]["gradient_checkpointing"] is False
    defaults = {"sdxl": (7.5, 1e-4), "flux": (3.5, 1e-4)}[family]  # the family's own (pipeline, trainer)
    assert (run["sampling"]["guidance_scale"], run["finetune"]["learning_rate"]) == defaults
    adapter = json.loads((out / "adapter" / "personalization.json").read_text())
    assert adapter["family"] == family and adapter["method"] == "imposter-guided"


@pytest.mark.parametrize("method", ["hiper", "adi"])
def test_a_peer_on_sdxl_or_flux_is_a_one_line_error(model, pair_files, tmp_path, capsys, method):
    assert generate(model, pair_files, tmp_path / "x", "--method", method) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--method {method} runs on SD 1.x/2.x checkpoints only" in err
