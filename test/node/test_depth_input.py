"""The node with use_depth over real rclpy: colour + registered depth + CameraInfo in, the
labelled organized cloud, the class markers and the 3D class medians out, checked numerically;
the Nav2 contract (identical stamps, LabelInfo latched first); bad depth input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.depth_rig import CX, CY, FX, FY, H, Rig, W, cloud_array, info_msg, plane_mm
from helpers.ros_helpers import image_fields_msg, make_picture, wait_for

rclpy = pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from ovseg_ros.io.image_codec import encode_16uc1, encode_float  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402


def labels_array(msg: Image) -> np.ndarray:
    dtype = np.uint8 if msg.encoding == "mono8" else np.dtype("<u2")
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)








def test_plane_gives_exact_points_labels_and_stamps(ros, seg_node):
    from vision_msgs.msg import LabelInfo

    node, ns = seg_node(use_depth=True, qos="reliable")
    info_seen = ros.collect(LabelInfo, f"{ns}/ovseg/label_info", Q.latched())
    rig = Rig(ros, ns)
    assert wait_for(lambda: info_seen.count >= 1)  # latched: there before any frame
    first_info = info_seen.times[0]
    stamp = rig.send(100, encode_16uc1(plane_mm()), info_msg())
    assert wait_for(lambda: rig.outputs_of(stamp, rig.points) and rig.outputs_of(stamp, rig.labels)
                    and rig.outputs_of(stamp, rig.conf8) and rig.outputs_of(stamp, rig.segs))
    assert first_info < rig.labels.times[0]
    cloud_msg = rig.outputs_of(stamp, rig.points)[0]
    lab = labels_array(rig.outputs_of(stamp, rig.labels)[0])
    # Nav2's exact-time join: the three carry the identical stamp and frame
    for msg in (cloud_msg, rig.outputs_of(stamp, rig.labels)[0],
                rig.outputs_of(stamp, rig.conf8)[0]):
        assert msg.header.stamp == stamp and msg.header.frame_id == "cam"
    assert (cloud_msg.height, cloud_msg.width, cloud_msg.is_dense) == (H, W, False)
    pts = cloud_array(cloud_msg)
    v, u = np.mgrid[0:H, 0:W]
    ok = u >= 3
    assert np.all(np.abs(pts["z"][ok] - 1.5) < 1e-3)
    np.testing.assert_allclose(pts["x"][ok], (u[ok] - CX) * 1.5 / FX, atol=1e-5)
    np.testing.assert_allclose(pts["y"][ok], (v[ok] - CY) * 1.5 / FY, atol=1e-5)
    assert np.all(np.isnan(pts["z"][~ok])) and np.all(np.isnan(pts["x"][~ok]))
    np.testing.assert_array_equal(pts["label"], lab)  # invalid points keep their label
    conf8 = labels_array(rig.outputs_of(stamp, rig.conf8)[0])
    np.testing.assert_allclose(pts["confidence"] * 255.0, conf8, atol=0.51)
    # the per-class medians in Segmentation are those of the cloud
    seg = rig.outputs_of(stamp, rig.segs)[0]
    for c in seg.classes:
        mine = ok & (lab == c.class_id)
        assert c.valid_points == int(mine.sum())
        if c.valid_points:
            assert math.isclose(c.median_point.z, 1.5, abs_tol=1e-3)
            assert math.isclose(c.median_point.x, float(np.median(pts["x"][mine])), abs_tol=1e-5)
        else:
            assert math.isnan(c.median_point.x)


def test_markers_sit_at_the_class_medians(ros, autostart_node):
    node, ns = autostart_node(use_depth=True, qos="reliable")
    rig = Rig(ros, ns)
    markers = ros.collect(MarkerArray, f"{ns}/ovseg/markers")
    assert wait_for(lambda: node.cameras[0].publisher("markers").get_subscription_count() > 0)
    depth = plane_mm().astype(np.float32) / 1000.0
    depth[H // 2:, :] = 2.0  # two depths, so medians differ per class
    depth[5, 10] = 50.0  # one far outlier: a median does not move
    stamp = rig.send(200, encode_float(depth), info_msg())
    assert wait_for(lambda: rig.outputs_of(stamp, rig.points) and markers.count >= 1)
    pts = cloud_array(rig.outputs_of(stamp, rig.points)[0])
    arr = next(a for a in markers.snapshot() if a.markers[0].header.stamp == stamp)
    assert arr.markers[0].action == Marker.DELETEALL
    texts = arr.markers[1:]
    assert texts and all(t.type == Marker.TEXT_VIEW_FACING for t in texts)
    for t in texts:
        mine = (pts["label"] == t.id) & ~np.isnan(pts["z"])
        assert t.text.endswith(f"({int(mine.sum())})") and t.id != 0
        for axis, got in zip("xyz", (t.pose.position.x, t.pose.position.y, t.pose.position.z),
                             strict=True):
            assert math.isclose(got, float(np.median(pts[axis][mine])), abs_tol=1e-5), axis


def test_depth_of_another_resolution_uses_scaled_intrinsics(ros, autostart_node):
    node, ns = autostart_node(use_depth=True, qos="reliable", points_stride=1)
    rig = Rig(ros, ns)
    small = plane_mm(H // 2, W // 2, 2000)  # 32x24 depth, the colour camera's CameraInfo
    stamp = rig.send(300, encode_16uc1(small), info_msg())
    assert wait_for(lambda: rig.outputs_of(stamp, rig.points) and rig.outputs_of(stamp, rig.labels))
    pts = cloud_array(rig.outputs_of(stamp, rig.points)[0])
    assert pts.shape == (H // 2, W // 2)
    v, u = np.mgrid[0:H // 2, 0:W // 2]
    fx, cx = FX * 0.5, (CX + 0.5) * 0.5 - 0.5  # pixel centres kept
    ok = u >= 3
    np.testing.assert_allclose(pts["x"][ok], (u[ok] - cx) * 2.0 / fx, atol=1e-5)
    lab = labels_array(rig.outputs_of(stamp, rig.labels)[0])
    np.testing.assert_array_equal(pts["label"], lab[1::2, 1::2])  # the nearest label pixel


def test_stride_decimates_rows_and_columns(ros, autostart_node):
    node, ns = autostart_node(use_depth=True, qos="reliable", points_stride=4)
    rig = Rig(ros, ns)
    stamp = rig.send(400, encode_16uc1(plane_mm()), info_msg())
    assert wait_for(lambda: rig.outputs_of(stamp, rig.points))
    pts = cloud_array(rig.outputs_of(stamp, rig.points)[0])
    assert pts.shape == (H // 4, W // 4)
    np.testing.assert_allclose(pts["x"][:, 1], (4 - CX) * 1.5 / FX, atol=1e-5)


def _depth_status(diags, ns):
    for arr in reversed(diags.snapshot()):
        for st in arr.status:
            if st.name.startswith(f"{ns[1:]}/ovseg: segmentation"):
                values = {kv.key: kv.value for kv in st.values}
                if "depth_pairing_rate" in values:
                    return st, values
    return None, {}


def _check_refusals(ros, rig, diags, ns, cases, first_sec):
    """Each case leaves the 2D outputs, gives no cloud and shows its reason in /diagnostics."""
    for sec, (kwargs, fragment) in enumerate(cases, start=first_sec):
        if isinstance(kwargs.get("depth_fields"), Image):  # an rgb8 image sent as depth
            img = kwargs.pop("depth_fields")
            img.header.stamp, img.header.frame_id = Time(sec=sec, nanosec=500_000_000), "cam"
            rig.depth.publish(img)
            kwargs["depth_fields"] = None
        stamp = rig.send(sec, **kwargs)
        assert wait_for(lambda st=stamp: rig.outputs_of(st, rig.labels)), fragment  # 2D goes on
        assert not rig.outputs_of(stamp, rig.points), fragment

        def shown(f=fragment) -> bool:
            status, _ = _depth_status(diags, ns)
            return status is not None and f in status.message

        assert wait_for(shown), (fragment, _depth_status(diags, ns))


def test_bad_depth_input_is_refused_with_reasons_and_2d_continues(ros, autostart_node):
    node, ns = autostart_node(use_depth=True, qos="reliable", depth_slop_s=0.01)
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    rig = Rig(ros, ns)
    _check_refusals(ros, rig, diags, ns, [
        (dict(depth_fields=encode_16uc1(plane_mm())), "no valid camera_info received yet"),
        (dict(depth_fields=None, info=info_msg(fx=0.0)), "last one refused: camera_info has "
         "focal lengths fx=0"),
        (dict(depth_fields=image_fields_msg(make_picture(H, W)), info=info_msg()),
         "unsupported depth encoding 'rgb8'"),
        (dict(depth_fields=encode_16uc1(plane_mm()), info=info_msg(), depth_offset_s=0.2),
         "nearest depth is +0.200 s from the colour stamp, more than depth_slop_s=0.01"),
    ], 500)
    status, values = _depth_status(diags, ns)
    assert status.level == bytes([1])  # WARN: depth asked for, no cloud
    assert int(values["camera_info_refused"]) >= 1 and int(values["depth_frames_refused"]) >= 1
    assert int(values["depth_miss_stamp_offset"]) >= 1
    assert float(values["depth_typical_stamp_offset_s"]) > 0
    # a good frame again: the cloud comes back, and the warning goes
    stamp = rig.send(600, encode_16uc1(plane_mm()), info_msg())
    assert wait_for(lambda: rig.outputs_of(stamp, rig.points))
    assert wait_for(lambda: _depth_status(diags, ns)[0].level == bytes([0]))
    assert node.health.failed == 0


def test_depth_or_camera_info_of_another_frame_is_refused(ros, autostart_node):
    node, ns = autostart_node(use_depth=True, qos="reliable")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    rig = Rig(ros, ns)
    _check_refusals(ros, rig, diags, ns, [
        (dict(depth_fields=encode_16uc1(plane_mm()), info=info_msg(), depth_frame="depth_cam"),
         "depth frame_id 'depth_cam' differs from the colour image's 'cam'"),
        (dict(depth_fields=encode_16uc1(plane_mm()), info=info_msg(frame="ir_cam")),
         "camera_info frame_id 'ir_cam' differs"),
    ], 700)
    assert "register node" in _depth_status(diags, ns)[0].message
    assert int(_depth_status(diags, ns)[1]["depth_miss_frame_id_mismatch"]) == 2
