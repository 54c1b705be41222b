"""bench and animate take the model family's defaults (FLUX.1: 28 steps, guidance 3.5) as generate does."""

import csv
import json

import pytest

from imposter.cli import main
from imposter.testing import random_image, save_random_pipeline


@pytest.fixture(scope="module")
def kontext(tmp_path_factory):
    return save_random_pipeline("kontext", tmp_path_factory.mktemp("kontext"))


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory):
    """One pair of 16-pixel images with captions the tiny tokenizers know."""
    folder = tmp_path_factory.mktemp("pairs")
    random_image(folder / "source.png", seed=1)
    random_image(folder / "driving.png", seed=2)
    path = folder / "pairs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["pair_id", "source_image", "source_prompt", "driving_image", "driving_prompt", "target_prompt"]
        )
        writer.writerow(
            ["p0", "source.png", "a dog", "driving.png", "a cat drinking water", "a dog drinking water"]
        )
    return path


def bench(model, pairs_csv, out, *extra):
    return main(
        [
            "bench", "--pairs", str(pairs_csv), "--model", str(model), "--device", "cpu",
            "--height", "16", "--width", "16", "--train-steps", "1", "--metrics", "sscd", "--quiet",
            "--out", str(out), *extra,
        ]
    )  # fmt: skip


def test_bench_takes_the_family_defaults_and_the_users_flags_win(kontext, pairs_csv, tmp_path, capsys):
    out = tmp_path / "bench"
    assert (
        bench(kontext, pairs_csv, out, "--methods", "kontext", "imposter-guided", "--guidance-scale", "2.5")
        == 0
    )
    capsys.readouterr()
    settings = json.loads((out / "bench_config.json").read_text())["settings"]["methods"]
    for name in ("kontext", "imposter-guided"):
        sampling, finetune = settings[name]["sampling"], settings[name]["finetune"]
        assert sampling["steps"] == 28  # FluxPipeline's own default, not the paper's 50
        assert sampling["guidance_scale"] == 2.5  # the flag wins over the family's 3.5
        assert finetune["learning_rate"] == 1e-4  # train_dreambooth_lora_flux.py's, not SD's 5e-4
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {record["method"] for record in records} == {"kontext", "imposter-guided"}


def test_bench_stops_before_any_work_when_a_method_cannot_run_on_the_model(pairs_csv, tmp_path, capsys):
    flux = save_random_pipeline("flux", tmp_path)
    out = tmp_path / "bench"
    assert bench(flux, pairs_csv, out, "--methods", "imposter-guided", "kontext") == 2
    assert "--method kontext needs a FLUX.1 Kontext checkpoint" in capsys.readouterr().err
    assert not (out / "adapters").exists()  # imposter did not fine-tune first


def test_animate_takes_the_family_defaults(kontext, pairs_csv, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    random_image(frames / "0.png", seed=3)
    out = tmp_path / "animate"
    source = pairs_csv.parent / "source.png"
    args = ["animate", "--model", str(kontext), "--source", str(source), "--source-prompt", "a dog"]
    args += ["--driving", str(frames), "--driving-prompt", "a cat drinking water", "--height", "16"]
    args += ["--width", "16", "--method", "imposter-guided", "--train-steps", "1", "--k", "1", "--quiet"]
    args += ["--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    run = json.loads((out / "config.json").read_text())["run"]
    assert (run["sampling"]["steps"], run["sampling"]["guidance_scale"], run["sampling"]["k"]) == (28, 3.5, 1)
    assert run["finetune"]["learning_rate"] == 1e-4
