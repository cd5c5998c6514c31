"""The console's boxes without ROS: a frame carries the detections of its own stamp only
(cli/console/frames.py), waits for them at most HOLD_S while the node publishes them, goes
without them when it does not (objects off), and the page's boxes read back from the packet;
Detection2DArray fields become boxes (cli/console/link.py)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np

from ovseg_ros.cli.console.frames import HOLD_S, CameraFrames, decode_packet, label_boxes
from ovseg_ros.cli.console.link import DETECTIONS_TYPE, boxes_of, cameras_of

SUMMARY = {"vocabulary_version": 2, "latency_ms": 5.0,
           "classes": [{"id": 1, "name": "cup"}, {"id": 4, "name": "chair"}]}
LABELS = np.zeros((6, 8), np.uint8)


def box(name: str, track: str, x: float = 1.0) -> dict:
    return {"x": x, "y": 2.0, "w": 3.0, "h": 4.0, "name": name, "track": track, "score": 0.5}


def parts(cam: CameraFrames, stamp, boxes=None, now: float = 0.0, summary_last=True):
    """Add one frame's parts as the node publishes them (detections before the summary)."""
    out = [cam.add("labels", stamp, "f", LABELS, now)]
    if boxes is not None:
        out.append(cam.add("detections", stamp, "f", boxes, now))
    out.append(cam.add("summary", stamp, "f", SUMMARY, now))
    return [f for f in out if f is not None]


def test_a_frame_carries_the_detections_of_its_own_stamp():
    cam = CameraFrames("")
    cam.want_detections = True
    (frame,) = parts(cam, (1, 0), [box("cup", "7"), box("chair", "3", x=5.0)])
    assert frame.detections == "received"
    assert [(b["name"], b["track"], b["label"]) for b in frame.boxes] == [
        ("cup", "7", 1), ("chair", "3", 4)]
    header, _ = decode_packet(frame.packet(overlay=False))
    assert header["detections"] == "received"
    assert [(b["x"], b["w"], b["label"]) for b in header["boxes"]] == [(1.0, 3.0, 1), (5.0, 3.0, 4)]


def test_the_detections_may_come_last():
    cam = CameraFrames("")
    cam.want_detections = True
    assert cam.add("labels", (2, 0), "f", LABELS, 0.0) is None
    assert cam.add("summary", (2, 0), "f", SUMMARY, 0.0) is None  # held for its detections
    frame = cam.add("detections", (2, 0), "f", [box("cup", "9")], 0.1)
    assert frame.stamp == (2, 0) and frame.boxes[0]["track"] == "9"


def test_a_frame_whose_detections_do_not_come_goes_without_boxes_after_the_hold():
    cam = CameraFrames("")
    cam.want_detections = True
    assert parts(cam, (3, 0), now=10.0) == []
    assert cam.expire(10.0 + HOLD_S / 2) is None  # still in time
    # The next frame's detections are no boxes of this one.
    assert cam.add("detections", (4, 0), "f", [box("cup", "1")], 10.1) is None
    frame = cam.expire(10.0 + HOLD_S)
    assert frame.stamp == (3, 0) and frame.detections == "late" and frame.boxes is None
    header, _ = decode_packet(frame.packet(overlay=False))
    assert header["detections"] == "late" and header["boxes"] is None
    assert cam.expire(100.0) is None  # nothing else waits
    assert cam.add("detections", (3, 0), "f", [box("cup", "1")], 10.3) is None  # too late
    (nxt,) = parts(cam, (4, 0), now=10.4)  # its detections came first: no wait
    assert nxt.detections == "received" and nxt.boxes[0]["track"] == "1"


def test_a_newer_frame_with_its_detections_overtakes_a_held_one():
    cam = CameraFrames("")
    cam.want_detections = True
    assert parts(cam, (5, 0), now=0.0) == []
    (frame,) = parts(cam, (6, 0), [box("chair", "2")], now=0.05)
    assert frame.stamp == (6, 0) and frame.detections == "received"
    assert cam.expire(10.0) is None  # the held older frame is gone, never shown
    assert cam.add("detections", (5, 0), "f", [box("cup", "8")], 0.1) is None


def test_of_held_frames_only_the_newest_due_is_shown():
    cam = CameraFrames("")
    cam.want_detections = True
    parts(cam, (7, 0), now=0.0)
    parts(cam, (8, 0), now=0.1)
    parts(cam, (9, 0), now=0.2)
    frame = cam.expire(0.15 + HOLD_S)  # 7 and 8 waited long enough, 9 may still get its own
    assert frame.stamp == (8, 0) and frame.detections == "late"
    last = cam.add("detections", (9, 0), "f", [], 0.3)
    assert last.stamp == (9, 0) and last.detections == "received" and last.boxes == []
    assert cam.expire(10.0) is None


def test_with_objects_off_frames_go_at_once_without_boxes():
    cam = CameraFrames("")  # want_detections False: the node publishes no detections
    (frame,) = parts(cam, (9, 0))
    assert frame.detections == "unavailable" and frame.boxes is None
    header, _ = decode_packet(frame.packet(overlay=False))
    assert header["detections"] == "unavailable" and header["boxes"] is None
    assert cam.expire(100.0) is None


def test_held_frames_go_at_once_when_the_detections_stop():
    cam = CameraFrames("")
    cam.want_detections = True
    assert parts(cam, (10, 0), now=0.0) == []
    cam.want_detections = False  # the node restarted with objects off
    frame = cam.expire(0.0)
    assert frame.stamp == (10, 0) and frame.detections == "unavailable"


def test_a_box_of_a_name_the_frame_does_not_hold_has_no_label():
    out = label_boxes([box("cup", "1"), box("<b>mug</b>", "2")], SUMMARY)
    assert [b["label"] for b in out] == [1, None]
    assert out[1]["name"] == "<b>mug</b>"  # the name as sent: the page shows it as text


def detection(cx, cy, w, h, name="cup", score=0.75, track="7", results=True):
    hyp = SimpleNamespace(hypothesis=SimpleNamespace(class_id=name, score=score))
    return SimpleNamespace(
        id=track, results=[hyp] if results else [],
        bbox=SimpleNamespace(center=SimpleNamespace(position=SimpleNamespace(x=cx, y=cy)),
                             size_x=w, size_y=h))


def test_detections_become_boxes_by_their_corner():
    msg = SimpleNamespace(detections=[
        detection(12.0, 20.5, 8.0, 5.0),  # columns 8..15, rows 18..22
        detection(math.nan, 3.0, 2.0, 2.0),  # not a box: left out
        detection(4.0, 4.0, 2.0, 2.0, score=math.inf, track="", name="sky"),
        detection(1.0, 1.0, 2.0, 2.0, results=False)])
    out = boxes_of(msg)
    assert out == [
        {"x": 8.0, "y": 18.0, "w": 8.0, "h": 5.0, "name": "cup", "track": "7", "score": 0.75},
        {"x": 3.0, "y": 3.0, "w": 2.0, "h": 2.0, "name": "sky", "track": "", "score": 0.0},
        {"x": 0.0, "y": 0.0, "w": 2.0, "h": 2.0, "name": "", "track": "7", "score": 0.0}]
    json.dumps(out, allow_nan=False)  # what the page's JSON.parse accepts


def test_detecting_cameras_come_from_the_nodes_detection_publishers():
    topics = [("/r/ovseg/labels", ["sensor_msgs/msg/Image"]),
              ("/r/ovseg/detections", [DETECTIONS_TYPE]),
              ("/r/ovseg/front/detections", [DETECTIONS_TYPE]),
              ("/r/ovseg/rear/detections_3d", ["vision_msgs/msg/Detection3DArray"]),
              ("/r/ovseg/odd/detections", ["std_msgs/msg/String"])]
    assert cameras_of("/r/ovseg", topics, "detections", DETECTIONS_TYPE) == ["", "front"]
    assert cameras_of("/r/ovseg", topics) == [""]
