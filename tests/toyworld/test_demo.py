"""``imposter demo`` end to end on the bundled model, at a few steps (the real one is timed in the README)."""

from PIL import Image

from imposter import FinetuneConfig, SamplingConfig
from imposter.toyworld.demo import DEMO_METHODS, run_demo


def test_demo_writes_its_picture_and_report(tmp_path):
    lines = []
    picture = run_demo(
        tmp_path / "demo",
        seeds=[0],
        progress=False,
        log=lines.append,
        finetune=FinetuneConfig(steps=3),
        sampling=SamplingConfig(steps=3, k=1),
    )
    assert picture == tmp_path / "demo" / "grid.png"
    with Image.open(picture) as grid:
        assert grid.width > grid.height  # source | driving | truth | one column per method, one row
    report = (tmp_path / "demo" / "bench" / "report.md").read_text()
    assert all(method in report for method in DEMO_METHODS)
    assert any(str(picture) in line for line in lines)
