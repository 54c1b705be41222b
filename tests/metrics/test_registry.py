import importlib
import sys

import pytest
from tiny_models import save_tiny_clip, save_tiny_dino_vit, save_tiny_dinov2, save_tiny_sscd

from imposter.errors import ConfigError
from imposter.metrics.clip import ClipScore
from imposter.metrics.dino import DinoScore
from imposter.metrics.phase import PhaseScore
from imposter.metrics.registry import build_metrics, metric_names
from imposter.metrics.sscd import SscdScore


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return {
        "clip_model": str(save_tiny_clip(folder / "clip")),
        "dino_model": str(save_tiny_dinov2(folder / "dinov2")),
        "sscd_model": save_tiny_sscd(folder / "sscd.torchscript.pt"),
    }


def test_every_registered_name_names_a_metric_class():
    from imposter.metrics.base import Metric
    from imposter.metrics.registry import METRIC_CLASSES

    for name in metric_names():
        module, class_name = METRIC_CLASSES[name]
        metric_class = getattr(importlib.import_module(module), class_name)
        assert issubclass(metric_class, Metric) and metric_class.keys, name


def test_unknown_name_lists_the_valid_ones_before_loading_anything():
    with pytest.raises(ConfigError, match=r"'clipp'.*clip, dino, sscd, phase, toy"):
        build_metrics(["clipp", "clip"], clip_model="/nonexistent/would-fail-if-loaded")


def test_builds_the_named_metrics_in_order(tiny):
    log = []
    metrics = build_metrics(["phase", "sscd", "clip", "dino", "phase"], batch_size=2, log=log.append, **tiny)
    assert [type(metric) for metric in metrics] == [PhaseScore, SscdScore, ClipScore, DinoScore]
    assert all(metric.batch_size == 2 for metric in metrics)
    assert log == []


def test_unavailable_metrics_are_skipped_with_one_line_each(tmp_path):
    log = []
    metrics = build_metrics(
        ["clip", "sscd", "phase"], clip_model=str(tmp_path / "missing-clip"), log=log.append
    )
    assert [type(metric) for metric in metrics] == [PhaseScore]
    assert len(log) == 2
    assert log[0].startswith("skipping metric 'clip': ") and "missing-clip" in log[0]
    assert log[1].startswith("skipping metric 'sscd': ") and "--sscd-model PATH" in log[1]
    assert all("\n" not in line for line in log)


def test_dino_variant_reaches_the_metric(tmp_path):
    folder = save_tiny_dino_vit(tmp_path / "dino-vit")
    (metric,) = build_metrics(["dino"], dino_model=str(folder), dino_variant="dreambooth")
    assert metric.features == "cls"
    with pytest.raises(ConfigError, match="unknown DINO variant"):  # a mistake, not a missing model
        build_metrics(["dino"], dino_variant="best")


def test_toy_ground_truth_is_built_by_name():
    (metric,) = build_metrics(["toy", "toy"])
    assert type(metric).__name__ == "ToyGroundTruth" and "pose_iou" in metric.keys


def test_a_plugin_registers_its_metric_by_name(monkeypatch):
    from imposter.metrics import registry

    monkeypatch.setattr(registry, "METRIC_CLASSES", dict(registry.METRIC_CLASSES))
    monkeypatch.setattr(registry, "GROUND_TRUTH", list(registry.GROUND_TRUTH))
    registry.register_metric("phase-again", "imposter.metrics.phase", "PhaseScore")
    registry.register_metric("truth", "imposter.toyworld.metric", "ToyGroundTruth", ground_truth=True)
    assert metric_names()[-2:] == ("phase-again", "truth")
    assert registry.ground_truth_metrics() == ("toy", "truth")
    assert [type(metric).__name__ for metric in build_metrics(["truth"])] == ["ToyGroundTruth"]


def test_importing_the_registry_imports_no_metric_module(monkeypatch):
    lazy = [f"imposter.metrics.{name}" for name in ("clip", "dino", "sscd", "phase", "registry")]
    for module in lazy:
        monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.import_module("imposter.metrics.registry")
    assert [module for module in lazy if module in sys.modules] == ["imposter.metrics.registry"]


def test_an_unreachable_hub_skips_a_hub_metric_at_once(monkeypatch):
    from imposter.metrics import base

    probes = []
    monkeypatch.setattr(base, "hub_reachable", lambda: probes.append(1) or False)
    log = []
    metrics = build_metrics(
        ["clip", "dino", "phase"],
        clip_model="nobody-here/clip-never-cached",
        dino_model="nobody-here/dino-never-cached",
        log=log.append,
    )  # local files only: no request is made, so no retries
    assert [type(metric) for metric in metrics] == [PhaseScore] and len(probes) == 2
    assert [line.split(": ")[0] for line in log] == ["skipping metric 'clip'", "skipping metric 'dino'"]
    assert all("\n" not in line and "never-cached" in line for line in log)


def test_a_metric_model_is_fetched_only_from_a_hub_that_answers(monkeypatch, tmp_path):
    from imposter.errors import MetricUnavailable
    from imposter.metrics import base

    calls = []

    def load(local_files_only):
        calls.append(local_files_only)
        if local_files_only:
            raise OSError("not in the cache\nsecond line")
        return "model"

    monkeypatch.setattr(base, "hub_reachable", lambda: True)
    assert base.load_metric_model("CLIP", "org/name", load) == "model" and calls == [False]
    monkeypatch.setattr(base, "hub_reachable", lambda: False)
    with pytest.raises(MetricUnavailable, match=r"^cannot load CLIP model 'org/name' \(not in the cache\);"):
        base.load_metric_model("CLIP", "org/name", load)
    assert calls == [False, True]
    monkeypatch.setattr(base, "hub_reachable", lambda: pytest.fail("a local folder needs no hub"))
    assert base.load_metric_model("CLIP", str(tmp_path), lambda local_files_only: local_files_only) is False


def test_the_hub_probe_is_one_request_and_never_raises(monkeypatch):
    import httpx
    import huggingface_hub

    from imposter.metrics.base import hub_reachable

    class Unreachable:
        def head(self, url, timeout):
            requests.append(url)
            raise httpx.ConnectError("Name or service not known")

    requests = []
    monkeypatch.setattr(huggingface_hub, "get_session", Unreachable)
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)
    assert hub_reachable() is False and len(requests) == 1
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: True)
    assert hub_reachable() is False and len(requests) == 1
