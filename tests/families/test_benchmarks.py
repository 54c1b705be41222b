"""benchmarks/speed.py and benchmarks/memory.py run end to end on the tiny SDXL / FLUX.1 shapes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def run(script: str, *args: str) -> str:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def table(text: str) -> dict[str, list[str]]:
    """A printed markdown table's rows by their first cell (header and rule left out)."""
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


@pytest.mark.parametrize("config", ["sdxl-tiny", "flux-tiny"])
def test_speed_times_finetune_and_sampling_steps_against_the_plain_pipeline(config):
    rows = table(run("speed.py", "--config", config, "--device", "cpu", "--repeats", "1"))
    assert {
        "fine-tune step, gradient checkpointing on (default)",
        "fine-tune step, gradient checkpointing off",
        "sampling step (ours): stepwise prompts + frequency guidance",
        "sampling step, the pipeline's own call, no callback",
    } <= set(rows)
    assert all(float(cells[0].removesuffix(" s/step")) > 0 for cells in rows.values())


def test_memory_computes_every_row_and_measures_one_in_a_fresh_process():
    text = run("memory.py", "--config", "sdxl-tiny", "--computed-only")
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")][1:]
    computed = {cells[1].strip(): float(cells[3]) for cells in rows}
    assert len(computed) == 7 and all(value > 0 for value in computed.values())  # no offload on a CPU
    assert "authors: full UNet + LoRA, float32 Adam" in computed
    assert computed["authors: full UNet + LoRA, float32 Adam"] > computed["LoRA, float32"]
    assert "peak RSS stands in for GPU memory" in text
    measured = json.loads(run("memory.py", "--config", "sdxl-tiny", "--row", "1").splitlines()[-1])
    # a tiny model's step may stay below the peak the imports already reached: peak above baseline >= 0
    assert measured["baseline"] > 0 and measured["peak"] >= 0


def test_gpu_report_runs_its_whole_plan_on_tiny_shapes_and_writes_table_and_json(tmp_path):
    out = tmp_path / "report"
    text = run("gpu_report.py", "--device", "cpu", "--tiny", "--out", str(out))
    numbers = json.loads((out / "report.json").read_text())["numbers"]
    assert set(numbers) == {"SD tiny", "SDXL tiny", "FLUX.1 tiny"}
    sd = numbers["SD tiny"]
    # the release's iteration (full UNet, fp32 Adam, two updates) against our LoRA step, and the pair's seconds
    assert sd["authors_finetune_step_s"] > 0 and sd["finetune_step_s"] > 0
    assert sd["speedup_pair"] == pytest.approx(sd["authors_pair_s"] / sd["pair_s"])
    assert sd["pair_s"] > 500 * sd["finetune_step_s"]  # the 500-step run extrapolated, plus sampling
    for family in ("SDXL tiny", "FLUX.1 tiny"):
        assert numbers[family]["sampling_step_s"] > 0 and numbers[family]["finetune_step_s"] > 0
    assert (out / "report.md").read_text() in text + "\n"
    assert "| SD tiny | release's pair end to end (K = 6, no guidance) |" in text
