"""--detect-pose's detectors for imposter: rtmlib's people (COCO-17) and animals (AP-10K) read into
our joints, auto's choice between them, and the one-line errors. rtmlib is faked: its ONNX weights come from
the internet, which tests cannot reach."""

import sys
import types

import numpy as np
import pytest
from PIL import Image

from imposter.controlnet import detect_pose
from imposter.errors import ConfigError, DataError
from imposter.pose_detection import ANIMAL17, COCO17, MIN_SCORE, best_figure, detect_keypoints
from imposter.retarget import JOINTS, retarget, with_pelvis
from imposter.toyworld.render import body_keypoints
from imposter.toyworld.world import ACTION_POSES, STANDING, get_class

PERSON = body_keypoints(get_class("robot").reference, ACTION_POSES["kicking"])
# a dog on four legs, seen from the side: the spine level, the legs down from its two ends
DOG = {
    "head": (14.0, 20.0), "neck": (20.0, 26.0),
    "left_shoulder": (21.0, 28.0), "left_elbow": (21.0, 35.0), "left_wrist": (21.0, 42.0),
    "right_shoulder": (19.0, 28.0), "right_elbow": (19.0, 35.0), "right_wrist": (19.0, 42.0),
    "left_hip": (41.0, 28.0), "left_knee": (41.0, 35.0), "left_ankle": (41.0, 42.0),
    "right_hip": (39.0, 28.0), "right_knee": (39.0, 35.0), "right_ankle": (39.0, 42.0),
}  # fmt: skip


def as_array(points: dict, table: dict[int, str], score: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """One figure in a detector's order (1 x 17 x 2, 1 x 17): ``points`` where ``table`` names them."""
    keypoints, scores = np.zeros((1, 17, 2)), np.zeros((1, 17))
    for index, name in table.items():
        keypoints[0, index], scores[0, index] = points[name], score
    return keypoints, scores


NOTHING = (np.zeros((0, 17, 2)), np.zeros((0, 17)))


@pytest.fixture
def fake_rtmlib(monkeypatch):
    """A fake rtmlib whose Body and Animal return what the test puts in ``found`` (kind -> arrays)."""
    found = {"Body": NOTHING, "Animal": NOTHING}

    def solution(kind):
        class Solution:
            def __init__(self, mode, backend, device):
                assert (mode, backend, device) == ("balanced", "onnxruntime", "cpu")

            def __call__(self, bgr):
                assert bgr.ndim == 3 and bgr.shape[2] == 3
                return found[kind]

        return Solution

    monkeypatch.setitem(
        sys.modules, "rtmlib", types.SimpleNamespace(Body=solution("Body"), Animal=solution("Animal"))
    )
    return found


IMAGE = Image.new("RGB", (64, 64), "white")


def test_rtmpose_reads_coco17_with_the_neck_between_the_shoulders(fake_rtmlib):
    fake_rtmlib["Body"] = as_array(PERSON, COCO17)
    points, used = detect_keypoints(IMAGE, "rtmpose", "driving")
    assert used == "rtmpose"
    for name in JOINTS:
        expected = PERSON[name]
        if name == "neck":  # COCO-17 has no neck: OpenPose's is the shoulders' midpoint
            expected = (np.asarray(PERSON["left_shoulder"]) + PERSON["right_shoulder"]) / 2
        np.testing.assert_allclose(points[name], expected)


def test_animal_reads_ap10k_joints_one_to_one(fake_rtmlib):
    fake_rtmlib["Animal"] = as_array(DOG, ANIMAL17)
    points, used = detect_keypoints(IMAGE, "animal", "source")
    assert used == "animal"
    for name in JOINTS:
        np.testing.assert_allclose(points[name], DOG[name])


def test_the_most_confident_figure_is_read_and_weak_joints_are_dropped():
    first, first_scores = as_array(PERSON, COCO17, score=0.5)
    second, second_scores = as_array(DOG, COCO17, score=0.8)
    second_scores[0, 9] = MIN_SCORE / 2  # its left wrist: under the bar
    points = best_figure(
        np.concatenate([first, second]), np.concatenate([first_scores, second_scores]), COCO17
    )
    np.testing.assert_allclose(points["left_shoulder"], DOG["left_shoulder"])
    assert "left_wrist" not in points
    assert best_figure(*NOTHING, COCO17) == {}


def test_auto_takes_the_person_and_else_the_animal(fake_rtmlib):
    fake_rtmlib["Animal"] = as_array(DOG, ANIMAL17)
    fake_rtmlib["Body"] = as_array(PERSON, COCO17)
    assert detect_keypoints(IMAGE, "auto", "driving")[1] == "rtmpose"
    keypoints, scores = as_array(PERSON, COCO17)
    scores[0, 11:13] = 0.1  # a human model on a dog: no hips it trusts
    fake_rtmlib["Body"] = (keypoints, scores)
    points, used = detect_keypoints(IMAGE, "auto", "source")
    assert used == "animal"
    np.testing.assert_allclose(points["left_hip"], DOG["left_hip"])


def test_no_body_is_a_one_line_error(fake_rtmlib):
    with pytest.raises(
        DataError, match="rtmpose then animal found no body .* source image; pass --source-keypoints FILE"
    ) as err:
        detect_keypoints(IMAGE, "auto", "source")
    assert "\n" not in str(err.value)


def test_missing_joints_are_guessed_with_a_warning(fake_rtmlib):
    keypoints, scores = as_array(PERSON, COCO17)
    scores[0, 10] = 0.0  # the right wrist hidden
    fake_rtmlib["Body"] = (keypoints, scores)
    with pytest.warns(UserWarning, match="right_wrist not found, guessed"):
        points, _ = detect_keypoints(IMAGE, "rtmpose", "driving")
    assert set(JOINTS) <= set(points)


def test_missing_package_and_wrong_use_say_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtmlib", None)  # import fails
    with pytest.raises(ConfigError, match="pip install rtmlib onnxruntime"):
        detect_keypoints(IMAGE, "animal", "source")
    with pytest.raises(ConfigError, match="must be one of openpose, rtmpose, animal, auto"):
        detect_keypoints(IMAGE, "dwpose", "source")
    with pytest.raises(ConfigError, match="toy finds keypoints for imposter; pose-control on that world"):
        detect_pose(IMAGE, "toy")


def test_pose_control_gets_the_detected_joints_drawn_as_openpose_draws_them(fake_rtmlib):
    """--detect-pose rtmpose (or animal, auto) for pose-control: the joints as an OpenPose body map, in
    controlnet_aux's colours: each joint a disc of its colour, each limb at 60% of its colour, black around."""
    from imposter.pose_detection import COLOURS_COCO18
    from imposter.retarget import OPENPOSE_COCO18, completed

    picture = Image.new("RGB", (512, 512))
    points = {name: np.asarray(xy) * 8 for name, xy in PERSON.items()}  # the 64 px figure at 512 px
    fake_rtmlib["Body"] = as_array(points, COCO17)
    drawn = np.asarray(detect_pose(picture, "rtmpose"))
    assert drawn.shape == (512, 512, 3) and (drawn[:4, :4] == 0).all()
    joints = completed(points)
    joints["neck"] = (joints["left_shoulder"] + joints["right_shoulder"]) / 2
    for index, name in OPENPOSE_COCO18.items():  # the joints, drawn last, in their colours
        x, y = np.round(joints[name]).astype(int)
        assert tuple(drawn[y, x]) == COLOURS_COCO18[index], name
    knee, ankle = joints["right_knee"], joints["right_ankle"]  # limb (10, 11): colour 8 at 60%
    x, y = np.round((knee + ankle) / 2).astype(int)
    assert tuple(drawn[y, x]) == tuple(int(c * 0.6) for c in COLOURS_COCO18[8])


def test_a_dog_retargeted_into_a_standing_person_stands_up_at_its_own_lengths():
    """The quadruped's joints map onto the human skeleton, so retargeting needs no special case: the level
    spine turns upright as the person's, each bone keeps the dog's length."""
    person = with_pelvis(body_keypoints(get_class("robot").reference, STANDING))
    dog = with_pelvis(DOG)
    moved = retarget(person, dog)
    spine, person_spine = moved["neck"] - moved["pelvis"], person["neck"] - person["pelvis"]
    assert np.linalg.norm(spine) == pytest.approx(np.linalg.norm(dog["neck"] - dog["pelvis"]))
    cosine = spine @ person_spine / np.linalg.norm(spine) / np.linalg.norm(person_spine)
    assert cosine == pytest.approx(1.0)  # upright as the person, where the dog's was level
    for a, b in (("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_elbow", "left_wrist")):
        assert np.linalg.norm(moved[b] - moved[a]) == pytest.approx(np.linalg.norm(dog[b] - dog[a]))


def test_generate_detects_an_animal_source_and_a_person_driving_with_auto(
    tiny_model, tmp_path, fake_rtmlib, capsys
):
    """imposter with --detect-pose auto and no keypoint files: the source image's joints from the
    animal model (the person model finds no body in it), the driving image's from the person model."""
    from imposter.cli import main
    from imposter.toyworld.render import render

    source, driving = (
        render(get_class("robot").reference, STANDING),
        render(get_class("duck").reference, ACTION_POSES["kicking"]),
    )
    source.save(tmp_path / "source.png")
    driving.save(tmp_path / "driving.png")
    source_bgr = np.asarray(source)[:, :, ::-1].tobytes()
    people = as_array(body_keypoints(get_class("duck").reference, ACTION_POSES["kicking"]), COCO17)
    animals = as_array(body_keypoints(get_class("robot").reference, STANDING), ANIMAL17)
    sys.modules["rtmlib"].Body.__call__ = lambda self, bgr: NOTHING if bgr.tobytes() == source_bgr else people
    sys.modules["rtmlib"].Animal.__call__ = lambda self, bgr: animals
    args = [
        "generate", "--model", str(tiny_model), "--method", "imposter", "--detect-pose", "auto",
        "--source", str(tmp_path / "source.png"), "--source-prompt", "a robot",
        "--driving", str(tmp_path / "driving.png"), "--driving-prompt", "a duck kicking",
        "--steps", "10", "--height", "64", "--width", "64", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(args) == 0
    log = capsys.readouterr()
    said = log.out + log.err
    assert "source keypoints: found by animal (auto)" in said
    assert "driving keypoints: found by rtmpose" in said
    assert (tmp_path / "run" / "config.json").is_file()


def test_the_keypoints_command_says_in_one_line_when_no_body_is_found(fake_rtmlib, tmp_path, capsys):
    from imposter.cli import main

    IMAGE.save(tmp_path / "wall.png")
    assert (
        main(["keypoints", str(tmp_path / "wall.png"), "--detect-pose", "auto", "--out", str(tmp_path)]) == 2
    )
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: rtmpose then animal found no body") and "\n" not in error
    assert "by hand" in error and not (tmp_path / "wall_keypoints.json").exists()


def test_a_pose_map_is_detected_only_for_a_method_that_reads_one():
    """--detect-pose draws the driving pose map for pose-control alone: imposter reads none (no detector
    runs), pose-control-oracle reads the truth's, which no detector sees."""
    from imposter.config import RunConfig
    from imposter.run import pose_map

    def config(method: str) -> RunConfig:
        return RunConfig("toy", method, "s.png", "d.png", "a dog", "a cat", "a dog", (0,), detect_pose="toy")

    for method in ("imposter-guided", "imposter", "pose-control-oracle"):
        assert pose_map(config(method), IMAGE, print) is None
    with pytest.raises(ConfigError, match="toy finds keypoints for imposter"):
        pose_map(config("pose-control"), IMAGE, print)
