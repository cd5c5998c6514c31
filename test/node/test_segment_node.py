"""The segmentation node over real rclpy, in-process: outputs, vocabulary, parameters, frames.

One Context per module (its own ROS_DOMAIN_ID, localhost discovery: see conftest.py) with a
multi-threaded executor in a background thread; every test gets a fresh node in its own
namespace on the tiny seeded random model (node_fixtures.py), so tests never see each other's
topics, once started by autostart and once through the lifecycle services.
"""

from __future__ import annotations

import array
import itertools
import math
import threading
import time

import numpy as np
import pytest
from helpers.ros_helpers import (
    assert_latency_does_not_grow,
    image_fields_msg,
    labels_array,
    make_picture,
    now,
    publish_at,
    send_until,
    stamp,
    wait_for,
)

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.msg import LabelMap, Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402

# ---- 1: outputs ---------------------------------------------------------------------------------


def test_outputs_have_sizes_encodings_and_the_input_header(ros, seg_node):
    pytest.importorskip("vision_msgs.msg")
    from vision_msgs.msg import LabelInfo

    node, ns = seg_node(publish_confidence_mono8=True)
    assert "no publisher" in node.qos_desc  # qos=auto with nobody publishing: sensor data
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    conf = ros.collect(Image, f"{ns}/ovseg/confidence")
    conf8 = ros.collect(Image, f"{ns}/ovseg/confidence_mono8")
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    label_map = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    label_info = ros.collect(LabelInfo, f"{ns}/ovseg/label_info", Q.latched())
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1))
    pic = make_picture(48, 80)
    sent = itertools.count(1)
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=stamp(1000 + next(sent), 123),
                                                    frame_id="cam_optical"),
                      lambda: min(labels.count, conf.count, conf8.count, segs.count) >= 2)

    for msg in labels.snapshot() + conf.snapshot() + conf8.snapshot() + segs.snapshot():
        assert msg.header.frame_id == "cam_optical"
        assert msg.header.stamp.sec > 1000 and msg.header.stamp.nanosec == 123
    lab, c, c8 = labels.last(), conf.last(), conf8.last()
    assert (lab.encoding, lab.height, lab.width, lab.step) == ("mono8", 48, 80, 80)
    assert (c.encoding, c.height, c.width, c.step) == ("32FC1", 48, 80, 320)
    assert (c8.encoding, c8.step, len(c8.data)) == ("mono8", 80, 48 * 80)
    assert len(lab.data) == 48 * 80 and len(c.data) == 48 * 80 * 4
    ids = set(np.unique(labels_array(lab)).tolist())
    assert ids <= {0, 1, 2, 3}
    confidence = np.frombuffer(bytes(c.data), "<f4")
    assert np.all((confidence >= 0) & (confidence <= 1))
    # Output of one input frame shares its stamp across topics.
    assert {m.header.stamp.sec for m in labels.snapshot()} & \
        {m.header.stamp.sec for m in segs.snapshot()}

    seg = segs.last()
    assert [(s.class_id, s.class_name) for s in seg.classes] == [(1, "cat"), (2, "dog"),
                                                                 (3, "car")]
    assert math.isclose(sum(s.pixel_fraction for s in seg.classes)
                        + float(np.mean(labels_array(lab) == 0)), 1.0, abs_tol=0.05)
    assert seg.inference_ms > 0 and seg.keyframe is False

    assert wait_for(lambda: label_map.count >= 1 and label_info.count >= 1)
    lm = label_map.last()
    assert [(e.class_id, e.class_name) for e in lm.labels] == [
        (0, "background"), (1, "cat"), (2, "dog"), (3, "car")]
    assert lm.background and lm.version == 1
    info = label_info.last()
    assert [(v.class_id, v.class_name) for v in info.class_map] == [
        (0, "background"), (1, "cat"), (2, "dog"), (3, "car")]


@pytest.mark.parametrize("params,error,fragment", [
    ({"overlay_alpha": 2.0}, "InvalidParameterValueException", "overlay_alpha"),
    ({"mode": "tiles"}, "ConfigError", "mode='tiles' is not one of"),
    ({"prompts": ["cup", "Cup"]}, "VocabularyError", "duplicates"),
    ({"threshold": 0}, "InvalidParameterTypeException", "threshold"),
])
def test_invalid_start_up_parameters_stop_the_node(ros, autostart_node, params, error,
                                                   fragment):
    """Type and range errors stop the constructor (rclpy refuses them at declaration); the
    others make autostart's configure fail: main() prints either as one error line."""
    with pytest.raises(Exception) as info:
        autostart_node(**params)
    text = f"{type(info.value).__name__}: {info.value}"
    assert error in text and fragment in text, text


# ---- 2: vocabulary changes while streaming ------------------------------------------------------


def test_set_prompts_while_streaming_keeps_ids_and_republishes_the_map(ros, seg_node):
    node, ns = seg_node()
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    label_map = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1))
    pic = make_picture()
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            pub.publish(image_fields_msg(pic, stamp=now(ros)))
            time.sleep(0.04)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        assert wait_for(lambda: segs.count >= 2 and label_map.count >= 1)
        res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                       SetPrompts.Request(prompts=["dog", "cat", "bird"]))
        assert res.success, res.message
        assert list(res.class_names) == ["dog", "cat", "bird"]
        assert list(res.class_ids) == [2, 1, 4]  # kept names keep ids; "car"'s 3 stays reserved
        new = [("dog", 2), ("cat", 1), ("bird", 4)]

        def uses_new():
            m = segs.last()
            return [(s.class_name, s.class_id) for s in m.classes] == new

        assert wait_for(uses_new)
        assert wait_for(lambda: label_map.last().version == 2)
        assert [(e.class_name, e.class_id) for e in label_map.last().labels][1:] == new

        # A refused change keeps the previous vocabulary and does not republish the map.
        res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                       SetPrompts.Request(prompts=["cup", "Cup"]))
        assert not res.success and "duplicate" in res.message
        assert list(res.class_names) == ["dog", "cat", "bird"]
        got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
        assert list(got.class_names) == ["dog", "cat", "bird"] and list(got.class_ids) == [2, 1, 4]
        assert got.background is True
        assert node.get_parameter("prompts").value == ["dog", "cat", "bird"]  # mirrored
        time.sleep(0.3)
        assert label_map.last().version == 2 and uses_new()
    finally:
        stop.set()
        streamer.join(2.0)


# ---- 3: parameters ------------------------------------------------------------------------------


def test_parameters_are_validated_and_applied(ros, seg_node):
    node, ns = seg_node()
    label_map = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    name = f"{ns}/ovseg"

    (r,) = ros.set_params(name, [Parameter("overlay_alpha", value=2.0)])
    assert not r.successful and r.reason
    assert node.get_parameter("overlay_alpha").value == 0.5
    (r,) = ros.set_params(name, [Parameter("overlay_alpha", value=0.8)])
    assert r.successful and node.values["overlay_alpha"] == 0.8
    (r,) = ros.set_params(name, [Parameter("model", value="ViT-L-14")])
    assert not r.successful and node.get_parameter("model").value != "ViT-L-14"
    (r,) = ros.set_params(name, [Parameter("threshold", value=0.6)])
    assert r.successful and node.segmenter.config.threshold == 0.6

    (r,) = ros.set_params(name, [Parameter("prompts", value=["cup", "table"])])
    assert r.successful
    assert node.vocabulary().as_dict() == {"cup": 4, "table": 5}
    assert wait_for(lambda: label_map.count and label_map.last().version == 2)
    (r,) = ros.set_params(name, [Parameter("prompts", value=["cup", " cup "])])
    assert not r.successful and "duplicate" in r.reason
    assert node.vocabulary().names == ("cup", "table")
    assert node.get_parameter("prompts").value == ["cup", "table"]


# ---- 4: encodings -------------------------------------------------------------------------------


def test_rgb8_and_bgr8_of_one_picture_give_identical_labels(ros, seg_node):
    node, ns = seg_node()
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    pic = make_picture(64, 96, seed=3)
    out = {}
    for i, enc in enumerate(("rgb8", "bgr8")):
        assert send_until(pub, lambda enc=enc, i=i: image_fields_msg(pic, enc, stamp(50 + i)),
                          lambda i=i: any(m.header.stamp.sec == 50 + i
                                          for m in labels.snapshot()))
        msg = next(m for m in labels.snapshot() if m.header.stamp.sec == 50 + i)
        out[enc] = labels_array(msg)
    assert np.array_equal(out["rgb8"], out["bgr8"])
    assert len(np.unique(out["rgb8"])) >= 1


# ---- 5: bad frames ------------------------------------------------------------------------------


def _bad_frames():
    good = image_fields_msg(make_picture(32, 48))
    wrong_step = image_fields_msg(make_picture(32, 48))
    wrong_step.step = 10
    truncated = image_fields_msg(make_picture(32, 48))
    truncated.data = array.array("B", bytes(truncated.data)[:100])
    unknown = image_fields_msg(make_picture(32, 48))
    unknown.encoding = "weird16"
    empty = Image(encoding="rgb8")
    nan = Image(height=2, width=2, encoding="32FC1", step=8)
    nan.data = array.array("B", np.array([0.1, np.nan, 0.2, 0.3], "<f4").tobytes())
    big = image_fields_msg(make_picture(200, 200))  # over max_image_pixels below
    return good, [("step", wrong_step), ("truncated", truncated), ("weird16", unknown),
                  ("invalid size", empty), ("NaN", nan), ("exceeds the limit", big)]


def test_bad_frames_are_rejected_and_the_node_keeps_serving(ros, seg_node):
    node, ns = seg_node(max_image_pixels=100 * 100)
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    good, bad = _bad_frames()
    for i, (fragment, msg) in enumerate(bad):
        msg.header.stamp = stamp(10 + i)
        pub.publish(msg)  # one at a time, so the one-slot buffer never replaces one
        assert wait_for(lambda i=i: node.health.rejected == i + 1), fragment
        assert fragment in node.health._last_reject
    assert labels.count == 0 and node.health.failed == 0
    good.header.stamp = stamp(99)
    assert send_until(pub, lambda: good, lambda: labels.count >= 1)
    assert labels.last().header.stamp.sec == 99
    assert node.worker.stats().failed == 0


# ---- 6: keeping up ------------------------------------------------------------------------------


def test_slow_inference_drops_frames_instead_of_queueing(ros, seg_node):
    node, ns = seg_node()
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    real = node.pipeline.process_batch

    def slow(frames, primary=0):  # an 80 ms model: slower than the 30 Hz input
        time.sleep(0.08)
        return real(frames, primary)

    node.pipeline.process_batch = slow
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1))
    frame = image_fields_msg(make_picture(48, 64))
    assert wait_for(lambda: node.count_publishers(node.input_topic) > 0)
    sent, pending = publish_at(ros, [pub], 30.0, [frame], node, duration=5.0,
                               until=lambda: segs.count >= 15)
    assert wait_for(lambda: node.worker.wait_idle(0.1))
    msgs = segs.snapshot()
    stats = node.worker.stats()
    print(f"sent {sent}, processed {len(msgs)}, dropped {stats.dropped}")
    assert len(msgs) >= 10 and max(pending) <= 1
    assert stats.dropped >= stats.submitted // 3  # most frames dropped, none queued
    assert stats.submitted <= sent and stats.processed <= stats.submitted - stats.dropped
    assert msgs[-1].frames_dropped > msgs[0].frames_dropped
    assert [m.frames_dropped for m in msgs] == sorted(m.frames_dropped for m in msgs)
    assert_latency_does_not_grow(msgs, "30 Hz into an 80 ms model")


def test_services_and_parameters_answer_while_a_frame_is_in_flight(ros, seg_node):
    node, ns = seg_node()
    real, release, entered = node.pipeline.process_batch, threading.Event(), threading.Event()

    def stuck(frames, primary=0):  # a frame that stays inside "the model" until released
        entered.set()
        release.wait(30.0)
        return real(frames, primary)

    node.pipeline.process_batch = stuck
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    try:
        assert send_until(pub, lambda: image_fields_msg(make_picture(24, 32), stamp=stamp(3)),
                          entered.is_set)
        got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
        res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                       SetPrompts.Request(prompts=["cat", "mug"]))
        (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("overlay_alpha", value=0.2)])
        assert list(got.class_names) == ["cat", "dog", "car"] and res.success and r.successful
        # answered while the frame is still in flight: without waiting for it
        assert node.worker.stats().busy and segs.count == 0 and not release.is_set()
    finally:
        release.set()
    assert wait_for(lambda: segs.count >= 1)


# ---- 7: overlay on demand -----------------------------------------------------------------------


def test_overlay_is_computed_only_while_someone_subscribes(ros, seg_node):
    node, ns = seg_node()
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1))
    pic = make_picture(40, 60)
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=now(ros)), lambda: segs.count >= 4)
    assert node.health.overlays == 0

    overlays = ros.collect(Image, f"{ns}/ovseg/overlay")
    assert wait_for(lambda: node.cameras[0].publisher("overlay").get_subscription_count() > 0)
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=now(ros)),
                      lambda: overlays.count >= 2)
    assert node.health.overlays >= 2
    ov = overlays.last()
    assert (ov.encoding, ov.height, ov.width, ov.step) == ("rgb8", 40, 60, 180)
    assert ov.header.frame_id == "cam"
