"""A fake camera for the node benchmark, run as its own process (as a real driver would be):
`python -m ovseg_ros.bench.camera WIDTHxHEIGHT RATE TOPIC` publishes one sample image as
rgb8 sensor_msgs/Image, stamped with the current ROS time, with sensor-data QoS."""

from __future__ import annotations

import array
import sys

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from ovseg_ros.node.runner import spin_node

from .images import sample_images


def main(argv: list[str]) -> int:
    size, rate, topic = argv[0], float(argv[1]), argv[2]
    w, h = (int(v) for v in size.lower().split("x"))
    rgb = sample_images((h, w), 1)[0]
    rclpy.init()
    node = Node("ovseg_bench_camera")
    pub = node.create_publisher(Image, topic, qos_profile_sensor_data)
    msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
    msg.header.frame_id = "bench_camera"
    msg.data = array.array("B", rgb.tobytes())  # skips rclpy's per-byte check of bytes

    def tick() -> None:
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)

    node.create_timer(1.0 / rate, tick)
    spin_node(node)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
