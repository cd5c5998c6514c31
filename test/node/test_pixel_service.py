"""~/pixel_classes over real rclpy: the answer against the node's own ~/labels and
~/confidence of the same frame, bad requests answered with their reason, and the admission
it shares with ~/query (a busy answer, nothing queued)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers.ros_helpers import image_fields_msg, make_picture

rclpy = pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import PixelClasses  # noqa: E402

H, W = 48, 80


def image(msg: Image) -> np.ndarray:
    dtype = {"mono8": np.uint8, "mono16": "<u2", "32FC1": "<f4"}[msg.encoding]
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def settled_frame(ros, ns: str, sec: int = 2000) -> dict[str, Image]:
    """Publish one picture stamped `sec` until its labels and confidence arrived; then the
    node's latest frame is that picture (same stamp, same result)."""
    cols = {t: ros.collect(Image, f"{ns}/ovseg/{t}") for t in ("labels", "confidence")}
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    stamp, pic = Time(sec=sec, nanosec=5), make_picture(H, W)
    deadline = time.monotonic() + 60
    while not all(any(m.header.stamp == stamp for m in c.snapshot()) for c in cols.values()):
        assert time.monotonic() < deadline, "no outputs"
        pub.publish(image_fields_msg(pic, stamp=stamp, frame_id="cam"))
        time.sleep(0.1)
    time.sleep(0.3)  # frames still in flight finish
    return {t: [m for m in c.snapshot() if m.header.stamp == stamp][-1] for t, c in cols.items()}


def pixel(ros, ns, u, v, count=0, camera=""):
    req = PixelClasses.Request(u=u, v=v, count=count, camera=camera)
    return ros.call(PixelClasses, f"{ns}/ovseg/pixel_classes", req, timeout=60.0)


def test_pixel_classes_match_the_published_frame(ros, autostart_node):
    node, ns = autostart_node(threshold=0.0)
    early = pixel(ros, ns, 0, 0)
    assert not early.success and "no frame processed yet" in early.message
    out = settled_frame(ros, ns)
    labels, conf = image(out["labels"]), image(out["confidence"])
    names = {0: "background", 1: "cat", 2: "dog", 3: "car"}
    for u, v in ((0, 0), (W - 1, H - 1), (17, 29), (40, 10)):
        res = pixel(ros, ns, u, v, count=4)
        assert res.success, res.message
        assert res.header.stamp == out["labels"].header.stamp and res.header.frame_id == "cam"
        assert (res.width, res.height, res.camera) == (W, H, "")
        assert res.vocabulary_version == 1
        assert res.class_id == labels[v, u] and res.class_name == names[res.class_id]
        assert res.confidence == pytest.approx(float(conf[v, u]), abs=1e-6)
        assert len(res.class_ids) == 4 and set(res.class_ids) == set(names)  # all 4 channels
        assert res.class_ids[0] == res.class_id and res.class_names[0] == res.class_name
        assert res.probabilities[0] == pytest.approx(float(conf[v, u]), abs=1e-5)
        assert list(res.probabilities) == sorted(res.probabilities, reverse=True)
        assert [names[c] for c in res.class_ids] == list(res.class_names)
    assert len(pixel(ros, ns, 1, 1).class_ids) == 4  # count 0: the default 5, 4 classes here
    assert len(pixel(ros, ns, 1, 1, count=2).class_ids) == 2


def test_bad_pixel_requests_answer_false_with_a_reason(ros, autostart_node):
    node, ns = autostart_node()
    settled_frame(ros, ns)
    for u, v, camera, why in ((W, 0, "", f"outside the {W}x{H} frame"),
                              (0, H, "", "outside"), (0, 0, "left", "unknown camera 'left'")):
        res = pixel(ros, ns, u, v, camera=camera)
        assert not res.success and why in res.message, res.message
        assert not res.class_ids and not res.probabilities
    node.trigger_deactivate()
    res = pixel(ros, ns, 0, 0)
    assert not res.success and "inactive" in res.message


def test_pixel_requests_are_admitted_like_queries(ros, autostart_node):
    """query_rate_hz bounds ~/query and ~/pixel_classes together: beyond it a request is
    refused at once with when to call again (one token per 100 s here)."""
    from ovseg_ros.srv import Query

    node, ns = autostart_node(query_rate_hz=0.01)
    settled_frame(ros, ns)
    first = pixel(ros, ns, 3, 3)
    assert first.success, first.message
    again = pixel(ros, ns, 3, 3)
    assert not again.success and again.message.startswith("busy:"), again.message
    assert "call again in about" in again.message
    query = ros.call(Query, f"{ns}/ovseg/query", Query.Request(phrases=["cat"]), timeout=60.0)
    assert not query.success and query.message.startswith("busy:")
    assert node.heavy.queries.refused == 2
