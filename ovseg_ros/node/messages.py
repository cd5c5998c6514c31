"""rclpy message helpers for what the node builds as rclpy objects (service answers, the replay
node's images); the outputs of a frame come from the frame step (frame/messages.py)."""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ovseg_ros.frame.messages import stamp_seconds, time_of
from ovseg_ros.io import ImageFields

__all__ = ["copy_header", "image_msg", "seconds_to_time", "stamp_seconds"]


def seconds_to_time(seconds: float | None) -> Time:
    """Float seconds -> builtin_interfaces/Time; None, NaN or negative -> zero time."""
    sec, nanosec = time_of(seconds)
    return Time(sec=sec, nanosec=nanosec)


def copy_header(header: Any) -> Header:
    """An rclpy Header with the stamp and frame_id of any Header (rclpy's or rosbags')."""
    return Header(stamp=Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
                  frame_id=header.frame_id)


def image_msg(fields: ImageFields, header: Header) -> Image:
    # array.array assignment skips rclpy's per-byte validation of `bytes` (see ImageFields).
    return Image(header=header, height=fields.height, width=fields.width,
                 encoding=fields.encoding, is_bigendian=fields.is_bigendian, step=fields.step,
                 data=fields.as_array())
