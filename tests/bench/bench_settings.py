"""Settings and checks shared by the bench tests (a module of its own: ``from conftest import`` is ambiguous)."""

from imposter.bench.store import read_results

# tiny settings: 3 fine-tuning steps, 4 DDIM steps; the toy ground truth needs no download (and is fast),
# and sscd (no model given) shows that an unavailable metric is absent, not 0
FAST = ["--train-steps", "3", "--steps", "4", "--k", "2", "--metrics", "toy", "sscd", "--quiet"]


def without_timings(records):
    return [{k: v for k, v in record.items() if k != "timings"} for record in records]


def same_bench(first, second):
    """Equal records (timings aside), images and report text."""
    assert without_timings(read_results(first)) == without_timings(read_results(second))
    for name in ("report.md", "per_pair.csv"):
        assert (first / name).read_text() == (second / name).read_text()
    images = sorted(p.relative_to(first) for p in (first / "images").rglob("*.png"))
    assert images == sorted(p.relative_to(second) for p in (second / "images").rglob("*.png"))
    assert all((first / p).read_bytes() == (second / p).read_bytes() for p in images)
