"""The page is built with the labels users and tests find it by, and toy-world examples with ground truth."""

from PIL import Image

from imposter.app.handlers import App, family_methods
from imposter.app.layout import build, toy_examples
from imposter.methods import METHOD_NAMES
from imposter.retarget import read_keypoints
from imposter.video.animate import SEQUENCE_METHODS

LABELS = {
    "Source image",
    "Source caption",
    "Driving image",
    "Driving caption",
    "Target caption",
    "Method",
    "Fine-tuning steps",
    "Denoising steps",
    "K",
    "Amplitude scale",
    "Phase scale",
    "Guidance scale",
    "Driving strength (0: off)",
    "Seeds",
    "Source keypoints (OpenPose JSON)",
    "Driving keypoints (OpenPose JSON)",
    "Results",
    "Driving video or frames",
    "Seed",
}


def test_toy_examples_are_files_with_captions_and_ground_truth(tmp_path):
    rows = toy_examples(tmp_path, count=2)
    assert len(rows) == 2
    for source, source_caption, driving, driving_caption, truth, source_points, driving_points in rows:
        assert isinstance(App.compose(source_caption, driving_caption), str)  # the target composes
        sizes = {Image.open(path).size for path in (source, driving, truth)}
        assert len(sizes) == 1 and all(path.startswith(str(tmp_path)) for path in (source, driving, truth))
        assert all(len(read_keypoints(path)) == 15 for path in (source_points, driving_points))  # 14 + pelvis


def test_the_page_has_every_labelled_field_and_two_tabs(engine, tmp_path):
    page = build(App(engine, tmp_path), toy_examples(tmp_path, count=1))
    labels = {getattr(block, "label", None) for block in page.blocks.values()}
    assert LABELS <= labels
    buttons = {block.value for block in page.blocks.values() if type(block).__name__ == "Button"}
    assert {"Generate", "Animate"} <= buttons
    tabs = {block.label for block in page.blocks.values() if type(block).__name__ == "Tab"}
    assert tabs == {"Generate", "Animate"}
    methods = [block.choices for block in page.blocks.values() if getattr(block, "label", None) == "Method"]
    generate_methods = [value for value, _ in methods[0]]
    assert {"imposter-guided", "baseline++", "hiper", "adi"} <= set(generate_methods) <= set(METHOD_NAMES)
    assert "kontext" not in generate_methods  # a FLUX.1-only method, and the tiny model is SD
    assert [value for value, _ in methods[1]] == list(SEQUENCE_METHODS)


def test_the_method_list_is_the_model_family_s(engine, monkeypatch):
    from imposter.methods import get_method

    assert "hiper" in family_methods(engine, METHOD_NAMES)
    monkeypatch.setattr(type(get_method("hiper")), "families", ("flux",))
    assert "hiper" not in family_methods(engine, METHOD_NAMES)


def test_the_fields_open_on_the_default_method_s_settings_with_what_it_fixes_locked(engine, tmp_path):
    page = build(App(engine, tmp_path), toy_examples(tmp_path, count=1))
    first = {}  # the Generate tab's field of each label (it comes first)
    for block in page.blocks.values():
        first.setdefault(getattr(block, "label", None), block)
    assert first["Method"].value == "imposter"
    strength = first["Driving strength (0: off)"]
    assert strength.value == 0.1 and strength.interactive is not False  # its default, the user's to change
    k = first["K"]
    assert k.value == 0 and k.interactive is False  # imposter fixes K = 0
