"""``imposter bench`` runs the peers beside each other on toy-world pairs, scored like every method."""

from imposter.bench.store import read_results
from imposter.cli import main
from imposter.toyworld.pairs import write_pairs


def test_bench_runs_hiper_adi_and_adi_lora(tiny_model, tmp_path):
    pairs = write_pairs(1, 0, tmp_path / "pairs")
    out = tmp_path / "bench"
    argv = ["bench", "--pairs", str(pairs), "--model", str(tiny_model), "--device", "cpu"]
    argv += ["--methods", "hiper", "adi", "adi+lora", "--seeds", "0", "--train-steps", "2", "--steps", "2"]
    assert main([*argv, "--metrics", "toy", "--quiet", "--out", str(out)]) == 0
    records = read_results(out)
    assert [r["method"] for r in records] == ["hiper", "adi", "adi+lora"]
    assert all(r["settings"]["sampling"]["k"] == 0 and "pose_iou" in r["metrics"] for r in records)
    assert all(f"| {name} | 1 |" in (out / "report.md").read_text() for name in ("hiper", "adi", "adi+lora"))
