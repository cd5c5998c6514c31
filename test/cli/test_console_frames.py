"""The console's frames (cli/console/frames.py, ROS-free): parts joined by stamp, the newest
frame only, and the packet the page reads back (labels exact, overlay as JPEG)."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest

from ovseg_ros.cli.console.frames import (
    PENDING,
    CameraFrames,
    Frame,
    decode_packet,
    quantise,
)

SUMMARY = {"vocabulary_version": 1, "classes": [], "latency_ms": 5.0}


def labels(h=6, w=8, top=3, dtype=np.uint8, seed=0):
    return np.random.default_rng(seed).integers(0, top + 1, (h, w)).astype(dtype)


def test_a_frame_is_complete_with_its_labels_and_summary_in_any_order():
    cam = CameraFrames("front")
    assert cam.add("summary", (1, 0), "f", SUMMARY) is None
    frame = cam.add("labels", (1, 0), "f", labels())
    assert frame is not None and frame.camera == "front" and frame.stamp == (1, 0)
    assert frame.frame_id == "f" and frame.overlay is None and frame.summary == SUMMARY
    assert cam.add("labels", (1, 0), "f", labels()) is None  # shown already


def test_with_the_overlay_wanted_a_frame_waits_for_it():
    cam = CameraFrames("")
    cam.want_overlay = True
    rgb = np.zeros((6, 8, 3), np.uint8)
    assert cam.add("labels", (2, 5), "f", labels()) is None
    assert cam.add("summary", (2, 5), "f", SUMMARY) is None
    frame = cam.add("overlay", (2, 5), "f", rgb)
    assert frame is not None and frame.overlay is rgb


def test_only_frames_newer_than_the_last_one_shown_come_out():
    cam = CameraFrames("")
    cam.add("labels", (3, 0), "f", labels())  # waits for its summary
    assert cam.add("labels", (4, 0), "f", labels()) is None
    assert cam.add("summary", (4, 0), "f", SUMMARY).stamp == (4, 0)
    assert cam.add("summary", (3, 0), "f", SUMMARY) is None  # overtaken: never shown
    for k in range(PENDING + 5):  # parts that never complete: at most PENDING wait
        cam.add("labels", (10 + k, 0), "f", labels())
    assert len(cam._pending) == PENDING


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 60000)])
def test_the_packet_reads_back_exactly(dtype, top):
    lab = labels(30, 40, top, dtype)
    frame = Frame("cam", (7, 9), "optical", lab, SUMMARY, seq=12)
    header, parts = decode_packet(frame.packet(overlay=True))  # no overlay: labels only
    assert header["seq"] == 12 and header["camera"] == "cam" and header["frame_id"] == "optical"
    assert header["stamp"] == {"sec": 7, "nanosec": 9}
    assert (header["width"], header["height"]) == (40, 30) and header["summary"] == SUMMARY
    (part,) = header["parts"]
    assert part["encoding"] == ("u8" if dtype == np.uint8 else "u16")
    back = np.frombuffer(zlib.decompress(parts["labels"]), "<u2" if dtype == np.uint16
                         else np.uint8).reshape(30, 40)
    np.testing.assert_array_equal(back, lab)


def test_the_overlay_goes_as_jpeg_to_the_pages_that_show_it():
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :24] = (250, 10, 10)  # red left, blue right
    rgb[:, 24:] = (10, 10, 250)
    frame = Frame("", (1, 0), "f", labels(32, 48), SUMMARY, overlay=rgb)
    header, parts = decode_packet(frame.packet(overlay=True))
    assert [p["name"] for p in header["parts"]] == ["labels", "overlay"]
    assert header["parts"][1]["mime"] == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(parts["overlay"], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.abs(decoded.astype(int) - rgb).mean() < 6  # colours kept, RGB order kept
    plain, _ = decode_packet(frame.packet(overlay=False))
    assert [p["name"] for p in plain["parts"]] == ["labels"]
    assert frame.packet(overlay=True) is frame.packet(overlay=True)  # encoded once


def test_relevance_is_quantised_to_bytes():
    rel = np.array([[0.0, 0.5, 1.0, np.nan]], np.float32)
    out = np.frombuffer(zlib.decompress(quantise(rel)), np.uint8)
    assert out.tolist() == [0, 128, 255, 0]


def test_a_packet_that_is_not_ours_is_refused():
    with pytest.raises(ValueError, match="not a console frame packet"):
        decode_packet(b"GIF89a" + bytes(10))
