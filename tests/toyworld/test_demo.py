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


def test_a_demo_folder_of_other_settings_is_refused_unless_overwritten(tmp_path):
    """A demo folder made with other settings (an older version's, say) is not silently mixed with this
    run: a one-line error that says --overwrite, which replaces it."""
    import pytest

    from imposter.errors import ImposterError

    quick = dict(seeds=[0], progress=False, log=lambda _: None, finetune=FinetuneConfig(steps=1))
    run_demo(tmp_path / "demo", methods=("phase-swap",), sampling=SamplingConfig(steps=2, k=1), **quick)
    with pytest.raises(ImposterError, match="other settings.*--overwrite"):
        run_demo(tmp_path / "demo", methods=("phase-swap",), sampling=SamplingConfig(steps=3, k=1), **quick)
    run_demo(
        tmp_path / "demo",
        methods=("phase-swap",),
        sampling=SamplingConfig(steps=3, k=1),
        overwrite=True,
        **quick,
    )
