"""3D messages (PointCloud2, MarkerArray, CameraInfo, Segmentation's 3D fields) built from
geometry results by the frame step's builders, read by rclpy from the bytes the node publishes,
read back with numpy through their own field descriptions, and sent over real rclpy + DDS."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rclpy  # noqa: F401  (a missing rclpy is a collection error, not a skip)
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField
from visualization_msgs.msg import Marker, MarkerArray

from ovseg_ros.core.results import ClassStat as CoreStat
from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.frame import cloud_messages, messages
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.types import default_distro
from ovseg_ros.geometry import PinholeIntrinsics, build_cloud, class_points
from ovseg_ros.msg import Segmentation
from ovseg_ros.viz import colour_for_id

H, W = 60, 80
INTR = PinholeIntrinsics(70.0, 72.0, 39.5, 29.5, W, H)
B = builder_for(default_distro())
HEADER = B.header(1712, 345_000_123, "cam_optical")
STAMP = (1712, 345_000_123)
RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
NUMPY = {PointField.FLOAT32: "<f4", PointField.UINT32: "<u4"}


def received(msg, cls):
    """What an rclpy subscriber reads from the bytes the node publishes."""
    return deserialize_message(B.serialize(msg), cls)


def pointcloud2_msg(cloud, header) -> PointCloud2:
    return received(cloud_messages.pointcloud2_msg(B, cloud, header), PointCloud2)


def markers_msg(points, names, header, **kw) -> MarkerArray:
    return received(cloud_messages.markers_msg(B, points, names, header, **kw), MarkerArray)


def segmentation_msg(result, header, *args, **kw) -> Segmentation:
    return received(messages.segmentation_msg(B, result, header, *args, **kw), Segmentation)


def camera_info_msg(intr, header) -> CameraInfo:
    return received(cloud_messages.camera_info_msg(B, intr, header), CameraInfo)


def stamp(header) -> tuple[int, int]:
    return header.stamp.sec, header.stamp.nanosec


def scene():
    z = np.full((H, W), 2.0, np.float32)
    lab = np.zeros((H, W), np.uint16)
    lab[10:30, 20:50] = 3
    z[10:30, 20:50] = 1.0
    lab[40:55, 5:25] = 8
    z[40:55, 5:25] = 1.5
    z[0, :] = np.nan
    conf = np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)
    return build_cloud(z, lab, conf, INTR), lab, conf


def read_cloud(msg: PointCloud2) -> np.ndarray:
    """The message's points as (height, width) structured array, from its own PointFields."""
    assert not msg.is_bigendian
    dtype = np.dtype({"names": [f.name for f in msg.fields],
                      "formats": [NUMPY[f.datatype] for f in msg.fields],
                      "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    raw = np.frombuffer(bytes(msg.data), np.uint8)
    assert raw.size == msg.row_step * msg.height
    return raw.view(dtype).reshape(msg.height, msg.width)


def test_pointcloud2_reads_back_to_the_cloud():
    cloud, lab, conf = scene()
    msg = pointcloud2_msg(cloud, HEADER)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (H, W, 24, 24 * W)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb", "label", "confidence"]
    assert all(f.count == 1 for f in msg.fields)
    assert msg.is_dense is False
    assert stamp(msg.header) == STAMP and msg.header.frame_id == "cam_optical"
    pts = read_cloud(msg)
    np.testing.assert_array_equal(pts["label"], lab)
    np.testing.assert_array_equal(pts["confidence"], conf)
    assert np.isnan(pts["z"][0]).all() and np.isnan(pts["x"][0]).all()
    for u, v in [(30, 20), (10, 45), (79, 59)]:
        z = float(pts["z"][v, u])
        assert z == pytest.approx(1.0 if lab[v, u] == 3 else 1.5 if lab[v, u] == 8 else 2.0)
        assert pts["x"][v, u] == pytest.approx((u - 39.5) * z / 70.0, rel=1e-6)
        assert pts["y"][v, u] == pytest.approx((v - 29.5) * z / 72.0, rel=1e-6)
        bits = int(pts["rgb"][v, u:u + 1].view(np.uint32)[0])
        assert ((bits >> 16) & 255, (bits >> 8) & 255, bits & 255) == colour_for_id(int(lab[v, u]))


def test_pointcloud2_over_dds(make_node, spin_until):
    cloud, lab, _ = scene()
    pub = make_node("cloud_talker").create_publisher(PointCloud2, "points", RELIABLE)
    got = []
    make_node("cloud_listener").create_subscription(PointCloud2, "points", got.append, RELIABLE)
    assert spin_until(lambda: pub.get_subscription_count() >= 1), "no discovery"
    pub.publish(pointcloud2_msg(cloud, HEADER))
    assert spin_until(lambda: got), "no cloud received"
    pts = read_cloud(got[0])
    np.testing.assert_array_equal(pts["label"], lab)
    np.testing.assert_array_equal(np.isnan(pts["z"]), np.isnan(cloud.points["z"]))
    assert stamp(got[0].header) == STAMP


def test_markers_delete_all_then_one_text_per_class_at_its_median():
    cloud, _, _ = scene()
    pts = class_points(cloud)
    msg = markers_msg(pts, {0: "background", 3: "chair", 8: "door handle"}, HEADER)
    first, *texts = msg.markers
    assert first.action == Marker.DELETEALL
    assert [m.id for m in texts] == [3, 8]  # background left out
    for m in texts:
        cp = pts[m.id]
        assert m.type == Marker.TEXT_VIEW_FACING and m.action == Marker.ADD
        assert stamp(m.header) == STAMP and m.header.frame_id == "cam_optical"
        assert (m.pose.position.x, m.pose.position.y, m.pose.position.z) == pytest.approx(
            cp.median)
        r, g, b = colour_for_id(m.id)
        assert (m.color.r, m.color.g, m.color.b, m.color.a) == pytest.approx(
            (r / 255, g / 255, b / 255, 1.0))
        assert m.scale.z > 0 and m.pose.orientation.w == 1.0
    assert texts[0].text == "chair (600)" and texts[1].text == "door handle (300)"
    assert texts[0].pose.position.z == pytest.approx(1.0)
    # the median of chair's pixels (rows 10..29, columns 20..49) at 1 m
    assert texts[0].pose.position.x == pytest.approx((34.5 - 39.5) / 70.0, abs=0.01)
    with_bg = markers_msg(pts, {}, HEADER, include_background=True)
    assert [m.id for m in with_bg.markers[1:]] == [0, 3, 8]
    assert with_bg.markers[1].text.startswith("id 0 (")


def _result(stats) -> SegmentationResult:
    return SegmentationResult(
        labels=np.zeros((2, 2), np.uint16), confidence=np.zeros((2, 2), np.float32),
        patch_probs=np.zeros((1, 1, 1), np.float32), objectness=np.zeros((1, 1), np.float32),
        class_ids=tuple(s.class_id for s in stats), class_names=tuple(s.class_name for s in stats),
        stats=stats, vocabulary_version=2)


def test_segmentation_carries_the_class_medians(make_node, spin_until):
    cloud, _, _ = scene()
    pts = class_points(cloud)
    stats = [CoreStat(3, "chair", 0.125, 0.5, 1.0), CoreStat(5, "cup", 0.0, 0.0, 0.25),
             CoreStat(8, "door handle", 0.0625, 0.75, 0.5)]
    msg = segmentation_msg(_result(stats), HEADER, 10.0, 20.0, 0, points_3d=pts)
    chair, cup, handle = msg.classes
    assert (chair.median_point.x, chair.median_point.y, chair.median_point.z) == pytest.approx(
        pts[3].median)
    assert chair.valid_points == 600 and handle.valid_points == 300
    assert cup.valid_points == 0 and math.isnan(cup.median_point.z)
    old = segmentation_msg(_result(stats), HEADER, 10.0, 20.0, 0)  # the builder without 3D
    assert all(c.valid_points == 0 and math.isnan(c.median_point.x) for c in old.classes)
    assert [c.pixel_fraction for c in old.classes] == [0.125, 0.0, 0.0625]

    pub = make_node("seg_talker").create_publisher(Segmentation, "segmentation", RELIABLE)
    got = []
    make_node("seg_listener").create_subscription(Segmentation, "segmentation", got.append,
                                                  RELIABLE)
    assert spin_until(lambda: pub.get_subscription_count() >= 1), "no discovery"
    pub.publish(msg)
    assert spin_until(lambda: got), "no Segmentation received"
    rx = got[0].classes
    assert rx[0].median_point == chair.median_point and rx[0].valid_points == 600
    assert math.isnan(rx[1].median_point.y) and rx[1].valid_points == 0


def test_camera_info_round_trips_through_from_camera_info():
    intr = PinholeIntrinsics(612.5, 611.25, 319.75, 238.5, 640, 480)
    msg = camera_info_msg(intr, HEADER)
    assert msg.header.frame_id == "cam_optical" and list(msg.d) == [0.0] * 5
    back = PinholeIntrinsics.from_camera_info(msg.k, msg.width, msg.height, msg.binning_x,
                                              msg.binning_y, (msg.roi.x_offset, msg.roi.y_offset,
                                                              msg.roi.width, msg.roi.height))
    assert back == intr
    assert msg.p[0] == 612.5 and msg.p[6] == 238.5
    with pytest.raises(ValueError, match="focal"):
        cloud_messages.camera_info_msg(B, PinholeIntrinsics(0.0, 1.0, 0.0, 0.0, 4, 4), HEADER)
