"""3D output messages from ROS-free geometry results (rclpy message types, no node).

* ``pointcloud2_msg``: the organized semantic cloud as sensor_msgs/PointCloud2.
* ``markers_msg``: visualization_msgs/MarkerArray, DELETEALL then one text per class.
* ``camera_info_msg``: sensor_msgs/CameraInfo for intrinsics (the replay's synthetic camera).
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping

import numpy as np
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ovseg_ros.geometry import (
    FIELDS,
    POINT_DTYPE,
    POINT_STEP,
    ClassPoint,
    PinholeIntrinsics,
    SemanticCloud,
)
from ovseg_ros.viz import colour_for_id

MARKER_NS = "ovseg_classes"


def pointcloud2_msg(cloud: SemanticCloud, header: Header) -> PointCloud2:
    """Organized PointCloud2 (height x width of the cloud, little-endian, is_dense false when
    any point is NaN). ``header`` is used as given: pass the label image's, so the stamps are
    identical (Nav2's semantic layer joins them by exact time)."""
    data = array.array("B")
    data.frombytes(cloud.data())  # array.array: rclpy takes it without per-byte checks
    return PointCloud2(
        header=header, height=cloud.height, width=cloud.width,
        fields=[PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                for f in cloud.fields],
        is_bigendian=False, point_step=cloud.point_step, row_step=cloud.row_step,
        data=data, is_dense=cloud.is_dense)


def points_from_msg(msg: PointCloud2) -> np.ndarray:
    """(height, width) POINT_DTYPE points of a cloud this package published (ValueError for
    another layout)."""
    layout = [(f.name, f.offset, f.datatype) for f in msg.fields]
    if layout != [(f.name, f.offset, f.datatype) for f in FIELDS] or msg.is_bigendian or \
            msg.point_step != POINT_STEP:
        raise ValueError(f"not an ovseg semantic cloud: fields {layout}")
    raw = np.frombuffer(bytes(msg.data), np.uint8)
    if raw.size != msg.row_step * msg.height or msg.row_step != POINT_STEP * msg.width:
        raise ValueError(f"cloud data is {raw.size} bytes, expected {msg.row_step * msg.height}")
    return raw.view(POINT_DTYPE).reshape(msg.height, msg.width)


def markers_msg(points: Mapping[int, ClassPoint], names: Mapping[int, str], header: Header,
                text_size_m: float = 0.12, include_background: bool = False) -> MarkerArray:
    """DELETEALL, then per class with valid points a TEXT_VIEW_FACING marker "name (count)" at
    its median point, in the label map colour. Marker ids are the label ids, namespace
    ``MARKER_NS``. Id 0 (background/unlabelled) is left out unless ``include_background``."""
    clear = Marker(header=header, ns=MARKER_NS, action=Marker.DELETEALL)
    out = [clear]
    for cid, cp in sorted(points.items()):
        if cid == 0 and not include_background:
            continue
        r, g, b = colour_for_id(cid)
        m = Marker(header=header, ns=MARKER_NS, id=int(cid), type=Marker.TEXT_VIEW_FACING,
                   action=Marker.ADD, text=f"{names.get(cid, f'id {cid}')} ({cp.count})",
                   color=ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0))
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in cp.median)
        m.pose.orientation.w = 1.0
        m.scale.z = float(text_size_m)  # TEXT_VIEW_FACING: only scale.z (text height) is used
        out.append(m)
    return MarkerArray(markers=out)


def camera_info_msg(intr: PinholeIntrinsics, header: Header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera (plumb_bob with zero coefficients)."""
    if not (math.isfinite(intr.fx) and intr.fx > 0 and math.isfinite(intr.fy) and intr.fy > 0):
        raise ValueError(f"camera_info_msg: invalid focal lengths {intr.fx}, {intr.fy}")
    return CameraInfo(
        header=header, width=intr.width, height=intr.height, distortion_model="plumb_bob",
        d=[0.0] * 5, k=[intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0])
