"""A colour + depth + camera_info rig for node tests with use_depth, and the numbers of its
synthetic camera (shared by the depth and query tests)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers.ros_helpers import image_fields_msg, make_picture, wait_for

rclpy = pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import messages as m  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402

H, W = 48, 64


FX, FY, CX, CY = 50.0, 55.0, 31.5, 23.5


NUMPY = {7: "<f4", 6: "<u4"}


def cloud_array(msg: PointCloud2) -> np.ndarray:
    """Read a PointCloud2 back through its own PointFields (independent of the node's code)."""
    dtype = np.dtype({"names": [f.name for f in msg.fields],
                      "formats": [NUMPY[f.datatype] for f in msg.fields],
                      "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    return np.frombuffer(bytes(msg.data), np.uint8).view(dtype).reshape(msg.height, msg.width)


def info_msg(width=W, height=H, fx=FX, fy=FY, cx=CX, cy=CY, frame="cam") -> CameraInfo:
    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
                     k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
    msg.header.frame_id = frame
    return msg


class Rig:
    """Publishers for colour, depth and camera_info of one node, and its collected outputs."""

    def __init__(self, ros, ns: str) -> None:
        pub = ros.helper.create_publisher
        self.ros, self.ns = ros, ns
        self.colour = pub(Image, f"{ns}/image", Q.reliable(5))
        self.depth = pub(Image, f"{ns}/depth", Q.reliable(5))
        self.info = pub(CameraInfo, f"{ns}/camera_info", Q.reliable(5))
        out = f"{ns}/ovseg"
        self.labels = ros.collect(Image, f"{out}/labels")
        self.conf8 = ros.collect(Image, f"{out}/confidence_mono8")
        self.points = ros.collect(PointCloud2, f"{out}/points")
        self.segs = ros.collect(Segmentation, f"{out}/segmentation")
        assert wait_for(lambda: all(p.get_subscription_count() > 0
                                    for p in (self.colour, self.depth, self.info)))

    def send(self, sec: int, depth_fields, info: CameraInfo | None = None, pic=None,
             depth_frame: str = "cam", depth_offset_s: float = 0.0) -> Time:
        stamp = Time(sec=sec, nanosec=500_000_000)
        if info is not None:
            info.header.stamp = stamp
            self.info.publish(info)
        if depth_fields is not None:
            d_stamp = m.seconds_to_time(sec + 0.5 + depth_offset_s)
            header = m.copy_header(Image().header)
            header.stamp, header.frame_id = d_stamp, depth_frame
            self.depth.publish(m.image_msg(depth_fields, header))
        time.sleep(0.05)  # depth first: the pairing also waits for late depth, but be plain
        self.colour.publish(image_fields_msg(make_picture(H, W) if pic is None else pic,
                                             stamp=stamp, frame_id="cam"))
        return stamp

    def outputs_of(self, stamp: Time, collector):
        return [msg for msg in collector.snapshot() if msg.header.stamp == stamp]


def plane_mm(h=H, w=W, mm=1500) -> np.ndarray:
    depth = np.full((h, w), mm, np.uint16)
    depth[:, :3] = 0  # no reading at the left border
    return depth


