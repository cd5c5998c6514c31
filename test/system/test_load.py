"""Load, bounded in time and loopback only: a 60 Hz VGA camera, and 4 cameras at 30 Hz.

Asserted: latency does not grow (a queue would add one input period per frame), the worker
never holds more than one frame per camera, drop counters grow, every camera gets outputs.
Never asserted: absolute speed (the box is shared and loaded).
"""

from __future__ import annotations

import time

import pytest
from helpers.ros_helpers import (
    assert_latency_does_not_grow,
    image_fields_msg,
    make_picture,
    publish_at,
    wait_for,
)

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402

pytestmark = pytest.mark.quiet  # time bounds under load or after signals: run alone


def slow_down(node, seconds: float) -> None:
    """A fixed extra delay per inference, so the input always outpaces the node."""
    for name in ("process", "process_batch"):
        real = getattr(node.pipeline, name)

        def slow(*args, real=real, **kwargs):
            time.sleep(seconds)
            return real(*args, **kwargs)

        setattr(node.pipeline, name, slow)


def test_vga_at_60_hz(ros, seg_node):
    node, ns = seg_node(input_size=224)
    slow_down(node, 0.03)
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation", 50)
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1))
    frame = image_fields_msg(make_picture(480, 640))
    assert wait_for(lambda: node.count_publishers(node.input_topic) > 0)
    sent, pending = publish_at(ros, [pub], 60.0, [frame], node,
                               until=lambda: len(segs.snapshot()) >= 15, max_duration=90.0)
    assert wait_for(lambda: node.worker.wait_idle(0.1), timeout=20.0)
    msgs, stats = segs.snapshot(), node.worker.stats()
    print(f"sent {sent}, received {node.health.received}, dropped {stats.dropped}, "
          f"processed {stats.processed}")
    assert len(msgs) >= 10 and max(pending) <= 1
    assert stats.dropped > 0 and msgs[-1].frames_dropped > msgs[len(msgs) // 2].frames_dropped
    assert stats.processed + stats.dropped + stats.failed == stats.submitted  # nothing lost
    assert stats.failed == 0 and node.health.rejected == 0
    assert_latency_does_not_grow(msgs, "VGA 60 Hz")


def test_four_cameras_at_30_hz(ros, seg_node):
    cams = [f"cam{i}" for i in range(4)]
    node, ns = seg_node(cameras=cams)
    slow_down(node, 0.03)
    batches: list[int] = []
    real = node.pipeline.process_batch
    node.pipeline.process_batch = lambda fr, primary=0: batches.append(len(fr)) or real(
        fr, primary)
    segs = {c: ros.collect(Segmentation, f"{ns}/ovseg/{c}/segmentation", 50) for c in cams}
    pubs = [ros.helper.create_publisher(Image, f"{ns}/{c}/image", Q.sensor_data(1))
            for c in cams]
    frames = [image_fields_msg(make_picture(240, 320, seed=i), frame_id=c)
              for i, c in enumerate(cams)]
    assert wait_for(lambda: all(node.count_publishers(c.input_topic) for c in node.cameras))
    sent, pending = publish_at(ros, pubs, 30.0, frames, node, until=lambda: all(
        len(segs[c].snapshot()) >= 12 for c in cams))
    assert wait_for(lambda: node.worker.wait_idle(0.1), timeout=20.0)
    stats = node.worker.stats()
    print(f"rounds {sent}, batch sizes {sorted(set(batches))}, dropped {stats.dropped_by_key}")
    assert max(pending) <= len(cams)  # one slot per camera, never a queue
    assert max(batches) >= 2  # waiting cameras shared an inference
    assert stats.processed + stats.dropped + stats.failed == stats.submitted
    for cam in cams:
        msgs = segs[cam].snapshot()
        assert len(msgs) >= 5, cam
        assert all(m.header.frame_id == cam for m in msgs)
        assert stats.dropped_by_key.get(cam, 0) > 0, cam
        # the last output reports the drops so far, once it has arrived (it may still be on
        # its way when the worker goes idle, and a late image may still be replaced)
        assert wait_for(lambda c=cam: segs[c].snapshot()[-1].frames_dropped
                        == node.worker.dropped(c), timeout=10.0), cam
        assert_latency_does_not_grow(msgs, cam)
