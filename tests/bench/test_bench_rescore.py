"""A metric that could not be loaded is scored later from the saved images: on resume, or by --rescore.

Pairs of random images (no toy world); metrics phase (model-free) and sscd (a tiny TorchScript file,
which a test can make appear or change).
"""

import json
import shutil

import pytest
import torch
from bench_settings import same_bench

from imposter.bench import scoring
from imposter.bench.store import read_results
from imposter.cli import main
from imposter.engine import ImPoster
from imposter.testing import random_image


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory):
    """Two pairs of random images."""
    folder = tmp_path_factory.mktemp("pairs")
    for i in range(4):
        random_image(folder / f"{i}.png", seed=10 + i)
    (folder / "pairs.csv").write_text(
        "pair_id,source_image,source_prompt,driving_image,driving_prompt,target_prompt\n"
        "p0,0.png,a cat,1.png,a dog running,a cat running\n"
        "p1,2.png,a fox,3.png,a bird flying,a fox flying\n"
    )
    return folder / "pairs.csv"


def save_descriptor(path, seed=0):
    """A TorchScript image descriptor, as SSCD ships: conv, pool, flatten."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    torch.jit.script(model).save(str(path))
    return path


@pytest.fixture(scope="module")
def sscd_file(tmp_path_factory):
    return save_descriptor(tmp_path_factory.mktemp("sscd") / "sscd.pt")


@pytest.fixture
def bench_argv(tiny_model, pairs_csv):
    """``imposter bench`` on the tiny model and the random pairs: 1 method, 2 seeds, 4 images."""

    def argv(out, metrics, *extra):
        return [
            "bench", "--pairs", str(pairs_csv), "--model", str(tiny_model), "--device", "cpu",
            "--methods", "imposter-guided", "--seeds", "0", "1", "--train-steps", "2", "--steps", "3", "--k", "1",
            "--quiet", "--metrics", *metrics, "--out", str(out), *extra,
        ]  # fmt: skip

    return argv


@pytest.fixture(scope="module")
def reference(tiny_model, pairs_csv, sscd_file, tmp_path_factory):
    """Both metrics available from the start, one process, uninterrupted."""
    out = tmp_path_factory.mktemp("reference") / "bench"
    argv = [
        "bench", "--pairs", str(pairs_csv), "--model", str(tiny_model), "--device", "cpu",
        "--methods", "imposter-guided", "--seeds", "0", "1", "--train-steps", "2", "--steps", "3", "--k", "1",
        "--quiet", "--metrics", "phase", "sscd", "--sscd-model", str(sscd_file), "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    records = read_results(out)
    assert len(records) == 4 and all(r["metrics_run"] == ["phase", "sscd"] for r in records)
    assert all(set(r["metrics"]) == {"phase", "sscd"} for r in records)
    return out


def image_files(out):
    """Each image's bytes and modification time: what regenerating it would change."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((out / "images").rglob("*.png"))}


def nothing_generated(monkeypatch):
    """Make loading a diffusion model or generating an image fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("no image was missing: nothing should be loaded or generated")

    monkeypatch.setattr(ImPoster, "from_pretrained", refuse)
    monkeypatch.setattr(ImPoster, "sample_batches", refuse)


def test_resume_fills_a_metric_that_could_not_load(
    reference, bench_argv, sscd_file, tmp_path, monkeypatch, capsys
):
    out, sscd = tmp_path / "bench", tmp_path / "sscd.pt"
    argv = bench_argv(out, ["phase", "sscd"], "--sscd-model", str(sscd))
    assert main(argv) == 0  # the SSCD file is not there yet
    assert "skipping metric 'sscd'" in capsys.readouterr().out
    records = read_results(out)
    assert all(r["metrics_run"] == ["phase"] and set(r["metrics"]) == {"phase"} for r in records)
    assert "SSCD" not in (out / "report.md").read_text()
    images = image_files(out)

    shutil.copy(sscd_file, sscd)  # now it is
    nothing_generated(monkeypatch)
    assert main(argv) == 0
    assert "scoring 4 saved images with the metrics their records lack" in capsys.readouterr().out
    assert image_files(out) == images
    same_bench(reference, out)
    assert main(argv) == 0  # all scored: nothing to do
    assert "scoring" not in capsys.readouterr().out


def test_rescore_adds_a_metric_changes_no_image_and_resumes_when_killed(
    reference, bench_argv, sscd_file, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "bench"
    assert main(bench_argv(out, ["phase"])) == 0
    images = image_files(out)
    rescore = ["bench", "--rescore", "--out", str(out), "--metrics", "sscd", "--sscd-model", str(sscd_file)]
    nothing_generated(monkeypatch)
    written = []
    original = scoring.write_record

    def killed_on_the_third_record(out, record):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(record)
        return original(out, record)

    monkeypatch.setattr(scoring, "write_record", killed_on_the_third_record)
    assert main([*rescore, "--quiet"]) == 130
    assert not list(out.rglob("*.tmp*"))
    runs = [json.loads(p.read_text())["metrics_run"] for p in sorted((out / "records").rglob("*.json"))]
    assert sorted(runs) == [["phase"], ["phase"], ["phase", "sscd"], ["phase", "sscd"]]
    monkeypatch.setattr(scoring, "write_record", original)
    capsys.readouterr()
    assert main([*rescore, "--quiet"]) == 0
    assert "scored 2 of 4 images with sscd" in capsys.readouterr().out
    assert image_files(out) == images
    same_bench(reference, out)
    stored = json.loads((out / "bench_config.json").read_text())["settings"]["metrics"]
    assert stored == {"phase": {}, "sscd": {"model": str(sscd_file)}}

    other = save_descriptor(tmp_path / "other.pt", seed=1)
    assert main([*rescore[:-1], str(other), "--quiet"]) == 2  # sscd already scored with another model
    assert "other metric settings (metrics.sscd.model:" in capsys.readouterr().err
    assert main(["bench", "--rescore", "--out", str(tmp_path / "none"), "--metrics", "phase"]) == 2
    assert "holds no bench" in capsys.readouterr().err


def test_two_processes_equal_one_and_fill_a_missing_metric(reference, bench_argv, sscd_file, tmp_path):
    out, sscd = tmp_path / "bench", tmp_path / "sscd.pt"
    argv = bench_argv(out, ["phase", "sscd"], "--sscd-model", str(sscd), "--num-processes", "2")
    assert main(argv) == 0
    assert all(r["metrics_run"] == ["phase"] for r in read_results(out))
    images = image_files(out)
    shutil.copy(sscd_file, sscd)
    assert main(argv) == 0
    assert image_files(out) == images
    same_bench(reference, out)
