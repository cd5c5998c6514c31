"""The segmentation node over real rclpy, in-process: the keyframe service, worker failures and
health, QoS matching, compressed input and 16-bit labels (fixtures: reliability_fixtures)."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
from helpers.ros_helpers import (
    image_fields_msg,
    labels_array,
    make_picture,
    now,
    send_until,
    stamp,
    wait_for,
)

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.node.segment_node import SegmentNode  # noqa: E402

_ns = itertools.count()


# ---- services, failures, health -----------------------------------------------------------------


def test_keyframe_service_says_why_when_keyframes_are_off(ros, seg_node):
    node, ns = seg_node()
    res = ros.call(Trigger, f"{ns}/ovseg/keyframe", Trigger.Request())
    assert res.success is False and "disabled" in res.message


def test_requested_keyframe_is_fused_into_a_later_frame(ros, seg_node):
    node, ns = seg_node(keyframes=True, keyframe_on_prompt_change=False)
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    pic = make_picture(48, 64)
    sent = itertools.count(1)
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=stamp(500 + next(sent))),
                      lambda: segs.count >= 2)
    assert not any(m.keyframe for m in segs.snapshot())  # no schedule: none until asked
    res = ros.call(Trigger, f"{ns}/ovseg/keyframe", Trigger.Request())
    assert res.success, res.message
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=stamp(500 + next(sent))),
                      lambda: any(m.keyframe for m in segs.snapshot()), timeout=60)
    fused = next(m for m in segs.snapshot() if m.keyframe)
    assert 500 < fused.keyframe_stamp.sec <= fused.header.stamp.sec  # ran on an earlier frame
    assert node.pipeline.keyframes_fused >= 1


def test_worker_exception_is_logged_and_reported_as_error_until_a_frame_succeeds(ros, seg_node):
    node, ns = seg_node()
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    real, fail = node.pipeline.process_batch, threading.Event()
    fail.set()

    def flaky(frames, primary=0):
        if fail.is_set():
            raise RuntimeError("simulated model failure")
        return real(frames, primary)

    node.pipeline.process_batch = flaky
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    pic = make_picture(32, 48)
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    pub.publish(image_fields_msg(pic, stamp=stamp(4242, 500_000_000)))
    mine = f"{ns[1:]}/ovseg: segmentation"

    def status(level):
        for arr in reversed(diags.snapshot()):
            for s in arr.status:
                if s.name == mine:
                    return s if s.level == bytes([level]) else None
        return None

    assert wait_for(lambda: status(2) is not None)
    assert "4242.500" in status(2).message and "simulated model failure" in status(2).message
    fail.clear()
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=now(ros)), lambda: segs.count >= 1)
    assert wait_for(lambda: status(0) is not None)


def test_nan_from_the_model_drops_the_frame_and_publishes_nothing_wrong(ros, seg_node):
    """Corrupt weights (NaN) are a per-frame ERROR with the reason, never labels from NaN."""
    import torch

    node, ns = seg_node()
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    # A head weight (torch on every backend: the onnxruntime encoder has its own weights)
    proj = node.segmenter.heads.obj_proj.weight
    saved = proj.detach().clone()
    with torch.no_grad():
        proj[0, 0, 0, 0] = float("nan")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    pic = make_picture(32, 48)
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    pub.publish(image_fields_msg(pic, stamp=stamp(77)))
    assert wait_for(lambda: node.health.failed >= 1)
    assert "NaN/Inf" in node.health._error and "77.000" in node.health._error
    mine = f"{ns[1:]}/ovseg: segmentation"
    assert wait_for(lambda: any(s.name == mine and s.level == bytes([2]) and "NaN" in s.message
                                for arr in diags.snapshot() for s in arr.status))
    assert segs.count == 0
    with torch.no_grad():
        proj.copy_(saved)
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=now(ros)), lambda: segs.count >= 1)


@pytest.mark.slow
def test_qos_mismatch_is_reported_and_auto_matches_the_publisher(ros, seg_node):
    from rclpy.event_handler import PublisherEventCallbacks
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    # reliable subscription vs a best-effort publisher: no frames, diagnostics say why
    node, ns = seg_node(qos="reliable", no_input_warn_s=0.5)
    quiet = PublisherEventCallbacks(incompatible_qos=lambda event: None)  # expected here
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1),
                                      event_callbacks=quiet)
    pic = make_picture(32, 48)
    deadline = time.monotonic() + 15.0
    report = None
    while time.monotonic() < deadline:
        pub.publish(image_fields_msg(pic, stamp=now(ros)))
        report = node.health.report(node.count_publishers(node.input_topic), 0, node.qos_desc)
        if report.level == 1 and "QoS mismatch" in report.message:
            break
        time.sleep(0.1)
    assert report is not None and "QoS mismatch" in report.message, report
    assert node.health.received == 0

    # auto: a reliable, transient-local publisher exists before the node starts
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    ns2 = f"/h{next(_ns)}"
    pub2 = ros.helper.create_publisher(Image, f"{ns2}/image", latched)
    pub2.publish(image_fields_msg(pic, stamp=stamp(7)))
    node3 = ros.add(SegmentNode(context=ros.context, namespace=ns2, parameter_overrides=[
        Parameter(k, value=node.get_parameter(k).value)
        for k in ("model", "clip_weights", "heads", "device", "precision", "input_size")]
        + [Parameter("qos", value="auto"), Parameter("prompts", value=["cat"])]))
    assert node3.qos_desc.startswith("reliable/transient_local"), node3.qos_desc
    segs = ros.collect(Segmentation, f"{ns2}/ovseg/segmentation")
    assert wait_for(lambda: segs.count >= 1)  # the latched frame arrives
    assert segs.last().header.stamp.sec == 7


def test_compressed_input_and_corrupt_jpeg(ros, seg_node):
    import cv2
    from sensor_msgs.msg import CompressedImage

    node, ns = seg_node(input_transport="compressed")
    assert node.input_topic == f"{ns}/image/compressed"
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    pub = ros.helper.create_publisher(CompressedImage, f"{ns}/image/compressed", Q.reliable(5))
    ok, jpeg = cv2.imencode(".jpg", make_picture(40, 56)[..., ::-1])
    corrupt = CompressedImage(format="jpeg", data=jpeg.tobytes()[:200] + b"\0" * 50)
    corrupt.header.stamp = stamp(30)
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    pub.publish(corrupt)
    assert wait_for(lambda: node.health.rejected == 1)
    good = CompressedImage(format="jpeg", data=jpeg.tobytes())
    good.header.stamp, good.header.frame_id = stamp(31), "jpeg_cam"
    assert send_until(pub, lambda: good, lambda: labels.count >= 1)
    lab = labels.last()
    assert (lab.height, lab.width, lab.header.stamp.sec, lab.header.frame_id) == \
        (40, 56, 31, "jpeg_cam")


def test_labels_switch_to_mono16_when_an_active_id_exceeds_255(ros, seg_node):
    node, ns = seg_node()
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    real = node.pipeline.process_batch

    def big_ids(frames, primary=0):  # a vocabulary that went past 255 names (costly to encode)
        res = real(frames, primary)[0]
        res.labels = res.labels.astype(np.uint16)
        res.labels[0, :3] = (300, 0, 2)
        res.class_ids = (0, 2, 300)
        return [res]

    node.pipeline.process_batch = big_ids
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    assert send_until(pub, lambda: image_fields_msg(make_picture(24, 32), stamp=stamp(9)),
                      lambda: labels.count >= 1)
    lab = labels.last()
    assert (lab.encoding, lab.step, len(lab.data)) == ("mono16", 64, 24 * 32 * 2)
    assert labels_array(lab)[0, :3].tolist() == [300, 0, 2]
