"""Odd but valid input frames through the running node, and the next good frame still served.

1x1 frames, big-endian mono16, a size that changes every frame, an empty frame_id, and stamps
that jump backwards. Rejected frames (wrong step, truncated, NaN, ...) are test_node_segment's.
"""

from __future__ import annotations

import array
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

pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402


def outputs(ros, ns: str) -> dict:
    return {name: ros.collect(t, f"{ns}/ovseg/{name}") for name, t in
            (("labels", Image), ("confidence", Image), ("overlay", Image),
             ("segmentation", Segmentation))}


def with_stamp(collector, sec: int):
    return next((m for m in collector.snapshot() if m.header.stamp.sec == sec), None)


def serve(pub, msg, out: dict, sec: int, names=("labels", "confidence", "segmentation")):
    """Publish `msg` stamped `sec` until every output in `names` has answered it."""
    msg.header.stamp = stamp(sec)
    assert send_until(pub, lambda: msg,
                      lambda: all(with_stamp(out[n], sec) is not None for n in names)), sec
    return {n: with_stamp(out[n], sec) for n in names}


def confidence_array(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), "<f4").reshape(msg.height, msg.width)


@pytest.mark.parametrize("input_size", [0, 448])
def test_one_pixel_frame_gives_one_pixel_outputs(ros, seg_node, input_size):
    node, ns = seg_node(input_size=input_size)
    out = outputs(ros, ns)  # an overlay subscriber too: its legend drawing sees 1x1
    assert wait_for(lambda: node.cameras[0].publisher("overlay").get_subscription_count() > 0)
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    got = serve(pub, image_fields_msg(np.full((1, 1, 3), 200, np.uint8)), out, 11,
                ("labels", "confidence", "overlay", "segmentation"))
    for name in ("labels", "confidence", "overlay"):
        assert (got[name].height, got[name].width) == (1, 1), name
    assert 0.0 <= confidence_array(got["confidence"])[0, 0] <= 1.0
    assert sum(s.pixel_fraction for s in got["segmentation"].classes) <= 1.0 + 1e-6
    good = serve(pub, image_fields_msg(make_picture(32, 48)), out, 12)
    assert (good["labels"].height, good["labels"].width) == (32, 48)
    assert node.health.failed == 0 and node.health.rejected == 0


def _mono16(values: np.ndarray, big_endian: bool) -> Image:
    data = values.astype(">u2" if big_endian else "<u2").tobytes()
    msg = Image(height=values.shape[0], width=values.shape[1], encoding="mono16",
                is_bigendian=int(big_endian), step=values.shape[1] * 2)
    msg.data = array.array("B", data)
    return msg


def test_big_endian_mono16_decodes_like_little_endian(ros, seg_node):
    node, ns = seg_node()
    out = outputs(ros, ns)
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    gray = make_picture(40, 56, seed=5).mean(axis=2).astype(np.uint16)
    # Distinct high and low bytes: a byte-order mix-up changes the picture the model sees.
    values = (gray << 8) | (255 - gray)
    little = serve(pub, _mono16(values, big_endian=False), out, 21)
    big = serve(pub, _mono16(values, big_endian=True), out, 22)
    assert np.array_equal(labels_array(little["labels"]), labels_array(big["labels"]))
    assert np.array_equal(confidence_array(little["confidence"]),
                          confidence_array(big["confidence"]))
    swapped = serve(pub, _mono16(values.byteswap(), big_endian=False), out, 23)
    assert not np.array_equal(confidence_array(swapped["confidence"]),
                              confidence_array(little["confidence"]))  # the check can fail


def test_outputs_follow_a_size_that_changes_every_frame(ros, seg_node):
    node, ns = seg_node()
    out = outputs(ros, ns)
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(10))
    sizes = [(32, 48), (64, 40), (17, 93), (48, 48), (1, 7), (90, 20)]
    sent: dict[int, tuple[int, int]] = {}
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    for i in range(60):  # ~30 Hz: some frames are dropped, none may come out the wrong size
        h, w = sizes[i % len(sizes)]
        sent[100 + i] = (h, w)
        pub.publish(image_fields_msg(make_picture(h, w, seed=i), stamp=stamp(100 + i)))
        time.sleep(1 / 30)
    assert wait_for(lambda: node.worker.wait_idle(0.1))
    assert wait_for(lambda: out["segmentation"].count >= 1)
    time.sleep(0.3)
    labels, confidence = out["labels"].snapshot(), out["confidence"].snapshot()
    assert len(labels) >= 3 and len({(m.height, m.width) for m in labels}) >= 2
    for msg in labels + confidence:
        assert (msg.height, msg.width) == sent[msg.header.stamp.sec], msg.header.stamp.sec
    good = serve(pub, image_fields_msg(make_picture(24, 30)), out, 300)
    assert (good["labels"].height, good["labels"].width) == (24, 30)
    assert node.health.failed == 0


def test_empty_frame_id_is_kept_empty(ros, seg_node):
    # Documented: the input header is copied as is; the node never invents a frame.
    node, ns = seg_node()
    out = outputs(ros, ns)
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    got = serve(pub, image_fields_msg(make_picture(24, 32), frame_id=""), out, 31)
    assert [got[n].header.frame_id for n in got] == ["", "", ""]
    named = serve(pub, image_fields_msg(make_picture(24, 32), frame_id="cam"), out, 32)
    assert named["labels"].header.frame_id == "cam"


def test_stamps_going_backwards(ros, seg_node):
    """A bag played in a loop: no crash, latency from arrival instead of decades, diagnostics
    OK, and the time-based keyframe schedule starts again."""
    node, ns = seg_node(keyframe_every_s=1000.0, keyframe_on_prompt_change=False)
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    pic = make_picture(32, 48)
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=now(ros)),
                      lambda: segs.count >= 3)
    assert node.pipeline.keyframes_started == 1  # the first frame; the next is 1000 s away
    forward = segs.snapshot()
    assert max(s.latency_ms for s in forward) < 60_000  # same clock: stamp-based

    sec = iter(range(1000, 10_000))  # 1970: decades behind the node's clock
    segs.clear()
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=stamp(next(sec))),
                      lambda: node.pipeline.keyframes_started == 2 and segs.count >= 3,
                      timeout=60.0)
    back = [s for s in segs.snapshot() if s.header.stamp.sec < 10_000]
    assert back and all(0.0 <= s.latency_ms < 60_000 for s in back), \
        [s.latency_ms for s in back]
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=stamp(next(sec))),
                      lambda: any(s.keyframe and 1000 <= s.keyframe_stamp.sec < 10_000
                                  for s in segs.snapshot()), timeout=60.0)
    time.sleep(0.6)  # two diagnostics periods that saw the backwards stamps

    def latest_status():
        mine = f"{ns[1:]}/ovseg: segmentation"
        found = [s for arr in diags.snapshot() for s in arr.status if s.name == mine]
        return found[-1] if found else None

    assert wait_for(lambda: latest_status() is not None)
    status = latest_status()
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == bytes([0]), status.message
    assert values["latency_ms_max"] == "n/a" or float(values["latency_ms_max"]) < 60_000
    assert node.health.failed == 0 and node.pipeline.keyframe_errors == 0


def test_latency_rule_uses_arrival_for_foreign_clocks(ros, seg_node):
    node, _ = seg_node()
    t_now = node.get_clock().now().nanoseconds * 1e-9
    arrived = time.monotonic() - 0.25  # the frame arrived 250 ms ago
    # Upper bounds only tell the two rules apart (a stalled box adds to both).
    assert 1990 < node.processor.latency_ms(t_now - 2.0, arrived) < 10_000  # same clock: the stamp
    for foreign in (1000.0, t_now - 3600.0, t_now + 5.0, 0.0):  # past, future, unstamped
        assert 240 <= node.processor.latency_ms(foreign, arrived) < 1900, foreign  # arrival


def test_no_frame_is_lost_while_parameters_change(ros, seg_node):
    # Frames sent one at a time while another thread changes threshold and alpha: each one
    # gets its outputs (nothing dropped by a parameter change, nothing failed).
    node, ns = seg_node()
    out = outputs(ros, ns)
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    stop = threading.Event()

    def churn():
        from rclpy.parameter import Parameter

        k = 0
        while not stop.is_set():
            k += 1
            ros.set_params(f"{ns}/ovseg", [Parameter("threshold", value=(k % 5) / 10),
                                           Parameter("overlay_alpha", value=(k % 3) / 3)])

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        for sec in range(400, 410):
            serve(pub, image_fields_msg(make_picture(24, 32, seed=sec)), out, sec)
    finally:
        stop.set()
        t.join(10.0)
    assert node.health.failed == 0 and node.worker.stats().failed == 0
