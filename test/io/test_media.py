"""ovseg_ros.io.media: image files, folders and videos as RGB frames; PNG and video writing."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from ovseg_ros.io.media import (
    MediaError,
    VideoWriter,
    count_frames,
    iter_frames,
    read_image,
    write_png,
)


def _rgb(seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "imgs"
    images = {}
    for i, name in enumerate(["frame10.png", "frame2.png", "Frame1.PNG"]):
        images[name] = _rgb(i)
        write_png(d / name, images[name])
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"ignored")
    (d / "sub").mkdir()
    return d, images


def test_folder_sorted_naturally_case_insensitive(folder):
    d, images = folder
    it = iter_frames(d)
    frames = list(it)
    assert [f.name for f in frames] == ["Frame1", "frame2", "frame10"]
    assert [f.index for f in frames] == [0, 1, 2]
    for f, src in zip(frames, ["Frame1.PNG", "frame2.png", "frame10.png"], strict=True):
        assert f.rgb.shape == (24, 32, 3) and f.rgb.dtype == np.uint8
        np.testing.assert_array_equal(f.rgb, images[src])  # PNG is lossless, RGB order kept
        assert f.path == str(d / src)
    assert it.kind == "folder" and it.total == 3 and it.skipped == 0
    assert count_frames(d) == 3


def test_corrupt_image_in_folder_is_skipped_and_counted(folder, caplog):
    d, _ = folder
    (d / "frame3.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    it = iter_frames(d)
    with caplog.at_level(logging.WARNING, logger="ovseg_ros.io.media"):
        names = [f.name for f in it]
    assert names == ["Frame1", "frame2", "frame10"]
    assert it.skipped == 1 and it.skipped_paths == [str(d / "frame3.jpg")]
    assert "frame3.jpg" in caplog.text
    assert count_frames(d) == 4  # the count is of files, for progress bars


def test_folder_with_only_unreadable_images(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    it = iter_frames(tmp_path)
    with pytest.raises(MediaError, match="none of the 1 images"):
        list(it)
    assert it.skipped == 1


def test_duplicate_stems_get_distinct_names(tmp_path):
    write_png(tmp_path / "a.png", _rgb(0))
    cv2.imwrite(str(tmp_path / "a.jpg"), _rgb(1))
    assert sorted(f.name for f in iter_frames(tmp_path)) == ["a_jpg", "a_png"]


def test_single_image(tmp_path):
    p = write_png(tmp_path / "out" / "pic.png", _rgb(5))
    frames = list(iter_frames(p))
    assert len(frames) == 1 and frames[0].name == "pic" and frames[0].index == 0
    np.testing.assert_array_equal(frames[0].rgb, _rgb(5))
    assert count_frames(p) == 1
    np.testing.assert_array_equal(read_image(p), _rgb(5))


def test_missing_and_empty_and_unreadable(tmp_path):
    with pytest.raises(MediaError, match="no such file or folder"):
        iter_frames(tmp_path / "nope")
    with pytest.raises(MediaError, match="no such file or folder"):
        count_frames(tmp_path / "nope.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="contains no images"):
        iter_frames(tmp_path / "empty")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(MediaError, match="cannot decode image"):
        iter_frames(tmp_path / "bad.png")
    (tmp_path / "clip.mp4").write_bytes(b"not a video at all")
    with pytest.raises(MediaError, match="cannot open"):
        iter_frames(tmp_path / "clip.mp4")


def test_image_above_max_pixels(tmp_path):
    p = write_png(tmp_path / "big.png", _rgb(0))
    with pytest.raises(MediaError, match="max_pixels"):
        iter_frames(p, max_pixels=100)


def _flat_frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
    return [np.full((h, w, 3), colours[i % len(colours)], np.uint8) for i in range(n)]


def test_video_with_opencv_writer(tmp_path):
    path = tmp_path / "clip.avi"
    frames = _flat_frames(5)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert vw.isOpened()
    for rgb in frames:
        vw.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    vw.release()

    assert count_frames(path) == 5
    it = iter_frames(path)
    got = list(it)
    assert it.kind == "video" and it.total == 5
    assert [f.name for f in got] == [f"clip_{i:06d}" for i in range(5)]
    assert [f.index for f in got] == list(range(5))
    for f, ref in zip(got, frames, strict=True):
        assert f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.uint8 and f.path is None
        # MJPG is lossy; a BGR/RGB swap would be off by ~170 on these colours.
        assert np.abs(f.rgb.astype(int) - ref).mean() < 8


def test_own_video_writer_and_early_close(tmp_path):
    path = tmp_path / "out" / "ov.avi"
    with VideoWriter(path, fps=5) as vw:
        for rgb in _flat_frames(3, 32, 48):
            vw.write(rgb)
        with pytest.raises(ValueError, match="differs"):
            vw.write(np.zeros((10, 10, 3), np.uint8))
    assert vw.frames == 3 and count_frames(path) == 3
    with iter_frames(path) as it:
        first = next(it)
    assert first.name == "ov_000000" and first.rgb.shape == (32, 48, 3)
    with pytest.raises(StopIteration):
        next(it)  # closed: the capture was released
    iter_frames(path).close()  # closing before iterating releases the capture too


def test_write_png_labels_and_rgba(tmp_path):
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    p = write_png(tmp_path / "l.png", labels)
    np.testing.assert_array_equal(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), labels)
    rgba = np.dstack([_rgb(2, 3, 4), np.full((3, 4), 128, np.uint8)])
    back = cv2.imread(str(write_png(tmp_path / "a.png", rgba)), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA), rgba)
    with pytest.raises(ValueError):
        write_png(tmp_path / "f.png", np.zeros((2, 2), np.float32))
