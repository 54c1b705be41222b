"""imposter.retarget: keypoints in and out, retargeting, the warp, fitting keypoints like images."""

import json
import sys
import types
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imposter.errors import DataError, ImposterWarning
from imposter.images import fit_image
from imposter.retarget import (
    JOINTS,
    TREE,
    completed,
    content_box,
    figure_mask,
    fit_keypoints,
    from_openpose,
    matte_image,
    read_keypoints,
    retarget,
    retargeted_image,
    to_openpose,
    warp,
    with_pelvis,
)
from imposter.toyworld.render import body_keypoints, render
from imposter.toyworld.world import ACTION_POSES, STANDING, get_class


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _figure(image: Image.Image) -> np.ndarray:
    return np.linalg.norm(np.asarray(image, dtype=float) - np.asarray(image)[0, 0], axis=2) > 24


PAIRS = [("right_shoulder", "left_shoulder"), ("right_hip", "left_hip")]


def test_retarget_takes_driving_directions_and_source_lengths():
    rng = np.random.default_rng(0)
    driving = {name: rng.uniform(0, 64, 2) for name in JOINTS}
    source = {name: rng.uniform(0, 64, 2) for name in JOINTS}
    out = retarget(driving, source)
    driving, source = with_pelvis(driving), with_pelvis(source)
    assert np.allclose(out["pelvis"], driving["pelvis"])
    rigid = {"left_shoulder", "right_shoulder", "left_hip", "right_hip"}  # hang on the body, not limbs
    for parent, child in [*[bone for bone in TREE if bone[1] not in rigid], *PAIRS]:
        bone, want = out[child] - out[parent], driving[child] - driving[parent]
        assert np.isclose(np.linalg.norm(bone), np.linalg.norm(source[child] - source[parent]))
        assert np.isclose(bone @ want, np.linalg.norm(bone) * np.linalg.norm(want))  # same direction
    assert np.allclose((out["left_hip"] + out["right_hip"]) / 2, out["pelvis"])


def test_retargeting_another_body_gives_the_source_body_in_the_driving_angles():
    """On the toy world the answer is known: the source class's skeleton in the driving pose."""
    source, driving = get_class("robot").reference, get_class("duck").reference
    pose = ACTION_POSES["dancing"]
    out = retarget(body_keypoints(driving, pose), body_keypoints(source, STANDING))
    truth = with_pelvis(body_keypoints(source, pose))
    shift = truth["pelvis"] - out["pelvis"]  # the toy places by the ground line, not the pelvis
    assert shift[0] == pytest.approx(0, abs=1e-6)
    for name in JOINTS:
        assert np.allclose(out[name] + shift, truth[name], atol=1e-6), name


def test_the_warp_moves_a_figure_into_another_pose():
    """Warping a render by its own skeleton into another pose lands near the render in that pose, and far
    closer than the unmoved figure; unmoved keypoints give the figure back."""
    subject = get_class("robot").reference
    before, after = STANDING, ACTION_POSES["kicking"]
    image = np.asarray(render(subject, before), dtype=float)
    mask = _figure(render(subject, before))
    background = image[0, 0]
    same, coverage = warp(
        image, mask, body_keypoints(subject, before), body_keypoints(subject, before), background
    )
    assert np.abs(same - image)[mask].max() < 1e-9 and (coverage[mask] == 1).all()
    moved, _ = warp(
        image, mask, body_keypoints(subject, before), body_keypoints(subject, after), background, 2
    )
    truth = _figure(render(subject, after))
    warped = np.linalg.norm(moved - background, axis=2) > 24
    assert _iou(warped, truth) > 0.8 > _iou(mask, truth) + 0.2  # measured: 0.88 and 0.60


def test_retargeted_image_stands_on_the_driving_ground_line():
    source, driving = get_class("robot").reference, get_class("duck").reference
    pose = ACTION_POSES["kicking"]
    picture = retargeted_image(
        render(source, STANDING),
        render(driving, pose),
        body_keypoints(source, STANDING),
        body_keypoints(driving, pose),
    )
    rows = np.nonzero(_figure(picture).any(axis=1))[0]
    driving_rows = np.nonzero(_figure(render(driving, pose)).any(axis=1))[0]
    assert picture.size == (64, 64) and rows.max() == driving_rows.max()
    assert _iou(_figure(picture), _figure(render(source, pose))) > 0.7


def test_openpose_json_round_trip_and_errors(tmp_path):
    points = {name: (float(i), 2.0 * i) for i, name in enumerate(JOINTS)}
    path = tmp_path / "pose.json"
    path.write_text(json.dumps(to_openpose(points)))
    read = read_keypoints(path)
    assert all(np.allclose(read[name], points[name]) for name in JOINTS)
    flat = to_openpose(points)["people"][0]["pose_keypoints_2d"]
    flat[3 * 1 + 2] = 0.0  # OpenPose's neck (index 1) not detected: the body's frame is missing
    with pytest.raises(DataError, match="lack neck"):
        from_openpose(flat)
    with pytest.raises(DataError, match="not found"):
        read_keypoints(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not JSON"):
        read_keypoints(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text(json.dumps({"people": []}))
    with pytest.raises(DataError, match="no person"):
        read_keypoints(tmp_path / "empty.json")


@pytest.mark.parametrize("fit", ["pad", "crop"])
@pytest.mark.parametrize("size", [(96, 64), (50, 80)])
def test_keypoints_move_as_fit_image_moves_the_pixels(fit, size):
    image = Image.new("RGB", size, (0, 0, 0))
    point = (round(size[0] * 0.6), round(size[1] * 0.4))  # whole pixels: PIL draws them exactly
    ImageDraw.Draw(image).ellipse(
        [point[0] - 3, point[1] - 3, point[0] + 3, point[1] + 3], fill=(255, 255, 255)
    )
    fitted = np.asarray(fit_image(image, 64, 64, fit), dtype=float)[..., 0]
    ys, xs = np.nonzero(fitted > 127)
    found = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    centre = (
        np.array(point) + 0.5
    )  # PIL fills pixels x-3..x+3: the dot's centre is x + 0.5 on a continuous axis
    moved = fit_keypoints({"dot": centre}, size, 64, 64, fit)["dot"]
    assert np.allclose(moved, found, atol=0.5), (moved, found)  # half a pixel: resampling blurs the dot


@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_padding_bars_are_neither_figure_nor_backdrop(fit):
    """A padded photo's black bars would otherwise be the border's colour and the whole photo a "figure"."""
    photo = Image.new("RGB", (40, 64), (200, 200, 190))
    ImageDraw.Draw(photo).rectangle([15, 20, 24, 50], fill=(200, 30, 30))
    fitted = fit_image(photo, 64, 64, fit)
    box = content_box(photo.size, 64, 64, fit)
    white = np.asarray(fit_image(Image.new("RGB", photo.size, (255, 255, 255)), 64, 64, fit))[..., 0] > 127
    ys, xs = np.nonzero(white)
    assert box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # where fit_image pastes the photo
    mask, background = figure_mask(np.asarray(fitted, dtype=float), box=box)
    red = np.asarray(fitted, dtype=float)[..., 0] - np.asarray(fitted, dtype=float)[..., 1] > 100
    assert np.allclose(background, (200, 200, 190), atol=2)
    assert (mask & red).sum() == red.sum() and mask.sum() < 1.5 * red.sum()  # the figure and its blurred rim


def test_joints_a_detector_missed_are_guessed_with_a_warning():
    body = with_pelvis(body_keypoints(get_class("robot").reference, ACTION_POSES["kicking"]))
    found = {name: xy for name, xy in body.items() if name not in ("right_wrist", "left_knee", "left_ankle")}
    with pytest.warns(ImposterWarning, match="right_wrist, left_knee, left_ankle not found"):
        points = completed(found)
    upper = body["right_elbow"] - body["right_shoulder"]  # the wrist continues the upper arm ...
    forearm = np.linalg.norm(body["left_wrist"] - body["left_elbow"])  # ... at the other forearm's length
    assert np.allclose(points["right_wrist"], body["right_elbow"] + upper / np.linalg.norm(upper) * forearm)
    assert points["left_ankle"][1] > points["left_knee"][1] > points["left_hip"][1]  # a lost leg hangs down
    assert all(np.allclose(points[name], body[name]) for name in found)


def test_a_matte_keeps_a_busy_backdrop_from_moving_with_the_body(tmp_path):
    """Told by colour, a noisy backdrop is "figure" and rides the bones; with the figure's matte (here an
    RGBA cutout, as rembg writes) only the body moves, onto the backdrop's median colour."""
    subject, driver = get_class("robot").reference, get_class("duck").reference
    pose = ACTION_POSES["kicking"]
    clean = render(subject, STANDING)
    figure = _figure(clean)
    rng = np.random.default_rng(0)
    busy = np.where(figure[..., None], np.asarray(clean), rng.integers(0, 256, (64, 64, 3))).astype(np.uint8)
    cutout = Image.fromarray(
        np.dstack([np.asarray(clean), np.where(figure, 255, 0).astype(np.uint8)]), "RGBA"
    )
    cutout.save(tmp_path / "cutout.png")
    args = (
        Image.fromarray(busy),
        render(driver, pose),
        body_keypoints(subject, STANDING),
        body_keypoints(driver, pose),
    )
    truth = _figure(render(subject, pose))
    with pytest.warns(
        ImposterWarning, match="source image's backdrop is not one plain colour.*--source-mask auto"
    ):
        by_colour = np.asarray(retargeted_image(*args), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the matte given, the driving image's plain backdrop: nothing to say
        matted = np.asarray(
            retargeted_image(*args, mattes=(matte_image(tmp_path / "cutout.png"), None)), dtype=float
        )
    moved = [np.linalg.norm(x - np.median(x[~truth], axis=0), axis=2) > 24 for x in (by_colour, matted)]
    assert _iou(moved[1], truth) > 0.7 > _iou(moved[0], truth)
    with pytest.raises(DataError, match="source mask .* not found"):
        matte_image(tmp_path / "missing.png")


def test_an_auto_matte_is_found_by_rembg_and_its_absence_is_one_line(monkeypatch):
    """--source-mask auto: the figure found by rembg (faked here: its weights cannot be downloaded)."""
    from imposter.errors import ConfigError
    from imposter.matting import AUTO

    clean = render(get_class("robot").reference, STANDING)
    figure = _figure(clean)
    calls = []
    fake = types.SimpleNamespace(
        new_session=lambda name: calls.append(name) or name,
        remove=lambda image, session, only_mask: Image.fromarray(np.where(figure, 255, 0).astype(np.uint8)),
    )
    monkeypatch.setitem(sys.modules, "rembg", fake)
    matte = matte_image(AUTO, "source", clean)
    assert matte.mode == "RGB" and np.array_equal(np.asarray(matte)[..., 0] > 127, figure)
    matte_image(AUTO, "driving", clean)
    assert calls == ["u2net"]  # one session for the process
    with pytest.raises(DataError, match="needs the source picture"):
        matte_image(AUTO)
    monkeypatch.setitem(sys.modules, "rembg", None)  # not installed
    import imposter.matting

    monkeypatch.setattr(imposter.matting, "_sessions", {})
    with pytest.raises(
        ConfigError, match="--driving-mask auto finds the figure with rembg.*imposter-diffusion\\[pose\\]"
    ):
        matte_image(AUTO, "driving", clean)
