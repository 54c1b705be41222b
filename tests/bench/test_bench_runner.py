"""``imposter bench`` end to end on the tiny pipeline: 2 pairs x 2 seeds x 2 methods."""

import json
from dataclasses import replace

import pytest
from bench_settings import FAST, same_bench

from imposter.bench import runner
from imposter.bench.config import BenchConfig, MethodSetup
from imposter.bench.launch import bench
from imposter.bench.pairs import read_pairs
from imposter.bench.store import prepare_output, read_results
from imposter.cli import main
from imposter.config import FinetuneConfig, SamplingConfig
from imposter.engine import ImPoster
from imposter.toyworld.metric import ToyGroundTruth

REPORT = ("report.md", "per_pair.csv", "tradeoff.png", "grids/toy-000.png", "grids/toy-001.png")


@pytest.fixture(scope="module")
def reference(tiny_model, toy_pairs, tmp_path_factory):
    """An uninterrupted single-process run, made once and compared with by the other tests."""
    out = tmp_path_factory.mktemp("reference") / "bench"
    argv = ["bench", "--pairs", str(toy_pairs), "--model", str(tiny_model), "--device", "cpu"]
    argv += ["--methods", "imposter-guided", "baseline++", "--seeds", "0", "1", *FAST, "--out", str(out)]
    calls = []
    original = ImPoster.learn
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImPoster, "learn", lambda *a, **k: calls.append(a) or original(*a, **k))
        assert main(argv) == 0
    return {"out": out, "personalize_calls": len(calls)}


def test_end_to_end(reference):
    out = reference["out"]
    records = read_results(out)
    assert [(r["pair_id"], r["method"], r["seed"]) for r in records] == [
        (pair, method, seed)
        for pair in ("toy-000", "toy-001")
        for method in ("imposter-guided", "baseline++")
        for seed in (0, 1)
    ]
    for record in records:
        assert {"pair_id", "method", "seed", "settings", "timings", "metrics", "image"} <= set(record)
        assert set(record["metrics"]) == set(ToyGroundTruth.keys)  # no sscd
        assert (out / record["image"]).is_file()
        assert record["settings"]["finetune"]["steps"] == 3 and record["settings"]["sampling"]["steps"] == 4
    k = {r["method"]: r["settings"]["sampling"]["k"] for r in records}
    assert k == {"imposter-guided": 2, "baseline++": 0}  # --k applies where it does not contradict the method
    # one fine-tune per pair serves both methods and both seeds
    assert reference["personalize_calls"] == 2
    assert [len(list(p.iterdir())) for p in sorted((out / "adapters").iterdir())] == [1, 1]
    assert {r["settings"]["adapter"] for r in records if r["pair_id"] == "toy-000"} == {
        f"adapters/toy-000/{next((out / 'adapters' / 'toy-000').iterdir()).name}"
    }
    assert all((out / name).is_file() for name in REPORT)
    table = (out / "report.md").read_text()
    assert "| imposter-guided | 4 |" in table and "| baseline++ | 4 |" in table and "SSCD" not in table
    assert (out / "per_pair.csv").read_text().splitlines()[0] == (
        "pair_id,method,images,pose_iou,subject,instance,leakage,identity,colour_leakage,psnr"
    )
    config = json.loads((out / "bench_config.json").read_text())
    assert (
        set(config["settings"]["methods"]) == {"imposter-guided", "baseline++"}
        and "torch" in config["environment"]
    )


def test_default_metrics_are_those_the_model_can_score(toy_pairs):
    """A bundled toy model scores ground truth and the phase score by default, never the hub's CLIP or DINO."""
    pairs = read_pairs(toy_pairs)
    setup = (MethodSetup.of("imposter-guided"),)
    for model in ("toy", "toy-flux"):
        assert BenchConfig(str(toy_pairs), setup, (0,), model=model).metric_names(pairs) == ("toy", "phase")
    untargeted = [replace(pair, target_image=None) for pair in pairs]
    assert BenchConfig(str(toy_pairs), setup, (0,), model="toy").metric_names(untargeted) == ("phase",)
    assert BenchConfig(str(toy_pairs), setup, (0,), model="some/model").metric_names(untargeted) == (
        "clip", "dino", "sscd", "phase",
    )  # fmt: skip
    assert BenchConfig(str(toy_pairs), setup, (0,), model="some/model").metric_names(pairs) == (
        "clip", "dino", "sscd", "phase", "toy",
    )  # fmt: skip
    assert BenchConfig(str(toy_pairs), setup, (0,), model="toy", metrics=("clip",)).metric_names(pairs) == (
        "clip",
    )


def test_report_is_rebuilt_from_the_json_lines_alone(reference, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.jsonl").write_text((reference["out"] / "results.jsonl").read_text())
    (copy / "images").symlink_to(reference["out"] / "images")
    assert main(["report", str(copy)]) == 0
    for name in REPORT:
        assert (copy / name).is_file()
    for name in ("report.md", "per_pair.csv"):
        assert (copy / name).read_text() == (reference["out"] / name).read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "results.jsonl not found" in capsys.readouterr().err


def test_killed_and_resumed_equals_uninterrupted(reference, bench_args, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench"
    written = []
    original = runner.write_record

    def killed_on_the_sixth_record(out, record):
        if len(written) == 5:  # pair 2, imposter, seed 1: seed 0 of the same batch is done
            raise KeyboardInterrupt
        written.append(record)
        return original(out, record)

    monkeypatch.setattr(runner, "write_record", killed_on_the_sixth_record)
    assert main(bench_args(out)) == 130
    assert (
        out / "images" / "toy-001" / "imposter-guided" / "seed_1.png"
    ).exists()  # the image, not its record
    assert not list(out.rglob("*.tmp*"))  # no half-written file
    monkeypatch.setattr(runner, "write_record", original)
    capsys.readouterr()
    assert main(bench_args(out)) == 0
    said = capsys.readouterr().out
    assert "resuming: 5 of 8 images already done" in said and "reusing the fine-tune" in said
    same_bench(reference["out"], out)
    assert main(bench_args(out)) == 0  # all done: nothing to redo
    same_bench(reference["out"], out)


def test_other_settings_are_refused_and_methods_can_be_added(reference, bench_args, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = bench_args(out)
    argv[argv.index("--methods") + 1 : argv.index("--seeds")] = ["baseline++"]
    assert main(argv) == 0
    assert main([*bench_args(out), "--lr", "1e-3"]) == 2
    assert "other settings (methods.baseline++.finetune.learning_rate: 0.0005 there, 0.001 now)" in (
        capsys.readouterr().err
    )
    assert main(bench_args(out)) == 0  # imposter joins and samples from baseline++'s fine-tunes
    assert capsys.readouterr().out.count("reusing the fine-tune") == 2
    same_bench(reference["out"], out)


def test_launched_ranks_split_the_pairs_and_rank_0_merges(
    reference, engine, toy_pairs, tiny_model, tmp_path, monkeypatch
):
    """What each process does under ``accelerate launch`` / ``torchrun`` (here one after the other)."""
    finetune, sampling = FinetuneConfig(steps=3), SamplingConfig(steps=4, k=2)
    config = BenchConfig(
        pairs=str(toy_pairs),
        methods=(
            MethodSetup.of("imposter-guided", finetune, sampling),
            MethodSetup.of("baseline++", finetune, sampling),
        ),
        seeds=(0, 1),
        model=str(tiny_model),
        device="cpu",
        metrics=("toy", "sscd"),
    )
    out = tmp_path / "bench"
    prepare_output(out, config.settings(read_pairs(toy_pairs)), overwrite=False)  # rank 0's first step
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert bench(config, out, engine=engine, progress=False) == []
    assert (out / "records" / "toy-001").is_dir() and not (out / "records" / "toy-000").exists()
    assert not (out / "results.jsonl").exists()
    monkeypatch.setenv("RANK", "0")
    assert len(bench(config, out, engine=engine, progress=False)) == 8
    same_bench(reference["out"], out)


def test_two_processes_equal_one(reference, bench_args, tmp_path):
    out = tmp_path / "bench"
    assert main([*bench_args(out), "--num-processes", "2"]) == 0
    same_bench(reference["out"], out)


def test_keypoints_a_csv_lacks_are_detected_with_detect_pose(tiny_model, toy_pairs, tmp_path):
    """A pairs CSV without keypoint columns (imposter120's) and imposter: --detect-pose finds each
    pair's joints (here the toy world's bundled detector), the pictures are those made with the detector's
    joints given as files, and the setting is part of what a resumed bench must match."""
    import csv
    import shutil

    import numpy as np
    from PIL import Image

    from imposter.bench.pairs import KEYPOINT_COLUMNS
    from imposter.retarget import to_openpose
    from imposter.toyworld.keypoint_detector import detect_toy_keypoints

    folder = tmp_path / "pairs"
    shutil.copytree(toy_pairs.parent, folder)
    with open(folder / "pairs.csv", newline="", encoding="utf-8") as handle:
        rows = [{k: v for k, v in row.items() if k not in KEYPOINT_COLUMNS} for row in csv.DictReader(handle)]

    def write(name, rows):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return str(folder / name)

    bare = write("bare.csv", rows)
    for row in rows:  # the same detector's joints, as files
        for role in ("source", "driving"):
            found = detect_toy_keypoints(Image.open(folder / row[f"{role}_image"]))
            (folder / f"{row['pair_id']}-{role}.json").write_text(json.dumps(to_openpose(found)))
            row[f"{role}_keypoints"] = f"{row['pair_id']}-{role}.json"
    files = write("files.csv", rows)
    argv = [
        "bench",
        "--model",
        str(tiny_model),
        "--device",
        "cpu",
        "--methods",
        "retarget-warp",
        "--seeds",
        "0",
    ]
    argv += ["--metrics", "toy", "--quiet"]
    assert main([*argv, "--pairs", bare, "--out", str(tmp_path / "none")]) == 2  # no joints: one line
    assert main([*argv, "--pairs", bare, "--detect-pose", "toy", "--out", str(tmp_path / "found")]) == 0
    assert main([*argv, "--pairs", files, "--out", str(tmp_path / "files")]) == 0
    found, given = read_results(tmp_path / "found"), read_results(tmp_path / "files")
    assert len(found) == len(given) == 2
    for a, b in zip(found, given, strict=True):
        pictures = [
            np.asarray(Image.open(out / r["image"]), dtype=float)
            for out, r in ((tmp_path / "found", a), (tmp_path / "files", b))
        ]
        assert np.abs(pictures[0] - pictures[1]).mean() < 0.5  # the files round the joints to 0.001 px
    config = json.loads((tmp_path / "found" / "bench_config.json").read_text())
    assert config["settings"]["detect_pose"] == "toy"
    assert main([*argv, "--pairs", bare, "--out", str(tmp_path / "found")]) == 2  # without it: refused
