"""The 3D output messages from ROS-free geometry results (rosbags classes, no node).

* ``pointcloud2_msg``: the organized semantic cloud as sensor_msgs/PointCloud2.
* ``markers_msg``: visualization_msgs/MarkerArray, DELETEALL then one text per class.
* ``camera_info_msg``: sensor_msgs/CameraInfo of a pinhole camera (the sample bag's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ovseg_ros.frame.builder import MessageBuilder
from ovseg_ros.geometry import ClassPoint, PinholeIntrinsics, SemanticCloud
from ovseg_ros.viz import colour_for_id

MARKER_NS = "ovseg_classes"
TEXT_VIEW_FACING, ADD, DELETEALL = 9, 0, 3  # visualization_msgs/Marker constants


def pointcloud2_msg(b: MessageBuilder, cloud: SemanticCloud, header: Any) -> Any:
    """Organized PointCloud2 (height x width of the cloud, little-endian, is_dense false when
    any point is NaN). Pass the label image's header: Nav2's semantic layer joins label,
    confidence and cloud by exact stamp."""
    fields = [b.make("sensor_msgs/msg/PointField", name=f.name, offset=f.offset,
                     datatype=f.datatype, count=f.count) for f in cloud.fields]
    return b.make("sensor_msgs/msg/PointCloud2", header=header, height=cloud.height,
                  width=cloud.width, fields=fields, is_bigendian=False,
                  point_step=cloud.point_step, row_step=cloud.row_step,
                  data=np.frombuffer(cloud.data(), np.uint8), is_dense=cloud.is_dense)


def markers_msg(b: MessageBuilder, points: Mapping[int, ClassPoint], names: Mapping[int, str],
                header: Any, text_size_m: float = 0.12, include_background: bool = False) -> Any:
    """DELETEALL, then per class with valid points a TEXT_VIEW_FACING marker "name (count)" at
    its median point, in the label map colour. Marker ids are the label ids, namespace
    ``MARKER_NS``. Id 0 (background/unlabelled) is left out unless ``include_background``."""
    out = [b.make("visualization_msgs/msg/Marker", header=header, ns=MARKER_NS,
                  action=DELETEALL)]
    for cid, cp in sorted(points.items()):
        if cid == 0 and not include_background:
            continue
        r, g, bl = colour_for_id(cid)
        x, y, z = (float(v) for v in cp.median)
        pose = b.make("geometry_msgs/msg/Pose",
                      position=b.make("geometry_msgs/msg/Point", x=x, y=y, z=z),
                      orientation=b.make("geometry_msgs/msg/Quaternion", w=1.0))
        out.append(b.make(
            "visualization_msgs/msg/Marker", header=header, ns=MARKER_NS, id=int(cid),
            type=TEXT_VIEW_FACING, action=ADD, pose=pose,
            text=f"{names.get(cid, f'id {cid}')} ({cp.count})",
            # TEXT_VIEW_FACING: only scale.z (the text height) is used
            scale=b.make("geometry_msgs/msg/Vector3", z=float(text_size_m)),
            color=b.make("std_msgs/msg/ColorRGBA", r=r / 255.0, g=g / 255.0, b=bl / 255.0,
                         a=1.0)))
    return b.make("visualization_msgs/msg/MarkerArray", markers=out)


def camera_info_msg(b: MessageBuilder, intr: PinholeIntrinsics, header: Any) -> Any:
    """CameraInfo of an undistorted pinhole camera (plumb_bob with zero coefficients)."""
    if not (math.isfinite(intr.fx) and intr.fx > 0 and math.isfinite(intr.fy) and intr.fy > 0):
        raise ValueError(f"camera_info_msg: invalid focal lengths {intr.fx}, {intr.fy}")
    f64 = np.float64
    return b.make(
        "sensor_msgs/msg/CameraInfo", header=header, width=intr.width, height=intr.height,
        distortion_model="plumb_bob", d=np.zeros(5, f64),
        k=np.array([intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0], f64),
        r=np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], f64),
        p=np.array([intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0,
                    0.0], f64))
