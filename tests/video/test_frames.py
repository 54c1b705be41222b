"""Driving frames: folders in natural order, videos and GIFs (written by our writers), the stride, errors."""

import sys

import numpy as np
import pytest
from PIL import Image

from imposter.errors import ConfigError, InputImageError
from imposter.video.frames import evenly_spaced, natural_key, read_frames
from imposter.video.writers import write_gif, write_mp4


def solid(value: int, size=(48, 40)) -> Image.Image:
    return Image.new("RGB", size, (value, 255 - value, 128))


def red(image: Image.Image) -> int:
    return int(np.asarray(image)[..., 0].mean().round())


@pytest.fixture
def folder(tmp_path):
    for index in (1, 2, 10, 11):
        solid(index * 20).save(tmp_path / f"frame_{index}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    return tmp_path


def test_a_folder_is_read_in_natural_order_skipping_other_files(folder):
    frames = read_frames(folder)
    assert [red(f) for f in frames.images] == [20, 40, 200, 220]
    assert frames.fps is None and frames.images[0].size == (48, 40)


def test_every_and_max_frames_pick_a_regular_subsequence(folder):
    assert [red(f) for f in read_frames(folder, every=2).images] == [20, 200]
    assert [red(f) for f in read_frames(folder, max_frames=3).images] == [20, 40, 200]
    assert [red(f) for f in read_frames(folder, every=3, max_frames=5).images] == [20, 220]


def test_natural_key_and_evenly_spaced():
    assert sorted(["f10.png", "f9.png", "F1.png"], key=natural_key) == ["F1.png", "f9.png", "f10.png"]
    assert evenly_spaced(3, 4) == [0, 1, 2]
    assert evenly_spaced(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced(10, 1) == [0]


def test_an_mp4_we_write_reads_back_with_its_rate(tmp_path):
    path = write_mp4([solid(40 * i, (64, 48)) for i in range(6)], tmp_path / "clip.mp4", fps=12)
    frames = read_frames(path)
    assert len(frames.images) == 6 and frames.fps == 12
    assert frames.images[0].size == (64, 48) and frames.images[0].mode == "RGB"
    assert [abs(red(f) - 40 * i) <= 6 for i, f in enumerate(frames.images)] == [True] * 6  # lossy codec
    halved = read_frames(path, every=2, max_frames=2)
    assert len(halved.images) == 2 and halved.fps == 6


def test_a_gif_we_write_reads_back_with_its_rate(tmp_path):
    path = write_gif([solid(60 * i) for i in range(4)], tmp_path / "clip.gif", fps=10)
    frames = read_frames(path, every=2)
    assert len(frames.images) == 2 and frames.fps == pytest.approx(5.0)
    assert [red(f) for f in frames.images] == [0, 120]


def test_a_still_image_is_a_sequence_of_one_frame(tmp_path):
    solid(10).save(tmp_path / "still.png")
    assert len(read_frames(tmp_path / "still.png").images) == 1


def one_line_error(path) -> str:
    with pytest.raises(InputImageError) as info:
        read_frames(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_an_empty_folder_a_broken_video_and_a_missing_path_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.mp4").write_text("junk")
    assert "holds no images" in one_line_error(tmp_path / "empty")
    assert "could not be read" in one_line_error(tmp_path / "broken.mp4")
    assert "not found" in one_line_error(tmp_path / "missing")


def test_a_video_without_the_ffmpeg_plugin_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    with pytest.raises(InputImageError, match=r'pip install "imposter-diffusion\[video\]"'):
        read_frames(path)


def test_bad_strides_are_refused(folder):
    with pytest.raises(ConfigError, match="--every"):
        read_frames(folder, every=0)
    with pytest.raises(ConfigError, match="--max-frames"):
        read_frames(folder, max_frames=0)
