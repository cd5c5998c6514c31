"""`qos: auto` with a camera that starts after the node: the node subscribed best effort (no
publisher to match yet); when a reliable publisher of large images appears in another process,
it re-subscribes reliable, and the frames arrive. Best effort, a 640x480 rgb8 image (900 KB,
sent in fragments) is lost whenever one fragment is: 0 to 3% of them arrived here."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers.ros_helpers import wait_for

pytest.importorskip("rclpy")
from ovseg_ros.msg import Segmentation  # noqa: E402

pytestmark = pytest.mark.slow  # a camera process for 16 s: not the inner loop

RATE_HZ, SECONDS = 5.0, 16.0
# A camera driver in its own process: reliable (the rclpy default), 640x480 rgb8, RATE_HZ,
# for SECONDS, then it exits by itself.
CAMERA = f"""
import sys, time, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

rclpy.init()
node = rclpy.create_node("late_camera")
pub = node.create_publisher(Image, sys.argv[1], QoSProfile(depth=5,
                            reliability=ReliabilityPolicy.RELIABLE))
msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=bytes(range(256)) * 3600)
print("publishing", flush=True)
t0 = time.monotonic()
k = 0
while time.monotonic() - t0 < {SECONDS}:
    msg.header.stamp = node.get_clock().now().to_msg()
    pub.publish(msg)
    k += 1
    time.sleep(max(0.0, t0 + k / {RATE_HZ} - time.monotonic()))
print("sent", k, flush=True)
"""


def test_a_reliable_camera_that_starts_later_is_matched_and_its_frames_arrive(
        ros, autostart_node):
    node, ns = autostart_node()  # qos: auto (the default), nobody publishing yet
    assert "no publisher at start-up" in node.qos_desc and "best_effort" in node.qos_desc
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    camera = subprocess.Popen([sys.executable, "-c", CAMERA, node.input_topic],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: "after activation" in node.qos_desc, timeout=20.0), \
            node.qos_desc
        assert node.qos_desc.startswith("reliable/volatile"), node.qos_desc
        time.sleep(1.0)  # frames in flight over the switch
        start, t0 = segs.count, time.monotonic()
        time.sleep(6.0)
        rate = (segs.count - start) / (time.monotonic() - t0)
        out, _ = camera.communicate(timeout=SECONDS + 30)
    finally:
        if camera.poll() is None:
            camera.kill()
            camera.wait(10)
    assert camera.returncode == 0, out
    # Reliable, the frames arrive (the tiny model keeps up with 5 frames/s); best effort,
    # 0 to 3% of them did. The bound is a tenth of the camera's rate: speed is not the point.
    assert rate >= 0.1 * RATE_HZ, (rate, out)
