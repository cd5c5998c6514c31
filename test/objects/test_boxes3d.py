"""ovseg_ros.objects.boxes3d: 3D boxes on known depth planes sit at their distance with the size
of the rectangle the camera sees, at the depth image's own resolution or another one, from the
depth image or from the frame's cloud; instances without enough depth are left out."""

from __future__ import annotations

import numpy as np
import pytest

from ovseg_ros.geometry import CameraInfoError, PinholeIntrinsics, build_cloud
from ovseg_ros.objects import boxes_3d, boxes_3d_from_cloud, find_instances

H, W = 120, 160
INTR = PinholeIntrinsics(100.0, 100.0, 79.5, 59.5, W, H)


def scene():
    """A cup on a plane 1.5 m away (columns 40..79, rows 30..69), a chair at 3 m (columns
    100..139, rows 20..99) on a wall at 5 m, and a small box with no depth at all."""
    lab = np.zeros((H, W), np.uint16)
    depth = np.full((H, W), 5.0, np.float32)
    lab[30:70, 40:80] = 1
    depth[30:70, 40:80] = 1.5
    lab[20:100, 100:140] = 2
    depth[20:100, 100:140] = 3.0
    lab[100:110, 10:20] = 3
    depth[100:110, 10:20] = np.nan
    frame = find_instances(lab, np.ones((H, W), np.float32), {1: "cup", 2: "chair", 3: "box"},
                           0.0)
    return frame, depth


def extent(u0, u1, c, f, z):
    """Metres spanned by pixel centres u0..u1 at depth z."""
    return (u0 - c) * z / f, (u1 - c) * z / f


def test_boxes_sit_at_the_plane_with_the_rectangle_size():
    frame, depth = scene()
    got = boxes_3d(frame.ids, len(frame), depth, INTR, trim=0.0, min_points=10)
    assert [b.index for b in got.boxes] == [1, 2] and got.too_few_points == (3,)
    cup, chair = got.boxes
    x0, x1 = extent(40, 79, INTR.cx, INTR.fx, 1.5)
    y0, y1 = extent(30, 69, INTR.cy, INTR.fy, 1.5)
    assert cup.center == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2, 1.5), abs=1e-6)
    assert cup.size == pytest.approx((x1 - x0, y1 - y0, 0.0), abs=1e-6)
    assert cup.points == 40 * 40
    assert cup.distance == pytest.approx(float(np.linalg.norm(cup.center)))
    assert chair.center[2] == pytest.approx(3.0) and chair.size[0] == pytest.approx(
        39 * 3.0 / 100.0)


def test_trimming_keeps_the_centre_and_drops_stray_points():
    """5% of the cup's pixels see the wall behind it (5 m): the trimmed box stays on the cup."""
    frame, depth = scene()
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(frame.ids == 1)
    stray = rng.choice(ys.size, ys.size // 25, replace=False)
    depth[ys[stray], xs[stray]] = 5.0
    full = boxes_3d(frame.ids, len(frame), depth, INTR, trim=0.0).boxes[0]
    trimmed = boxes_3d(frame.ids, len(frame), depth, INTR, trim=5.0).boxes[0]
    assert full.size[2] == pytest.approx(3.5)  # stretched to the wall
    assert trimmed.size[2] == pytest.approx(0.0) and trimmed.center[2] == pytest.approx(1.5)
    # on each axis the trimmed span is the 5th-95th percentile span of an even grid: 90%
    x0, x1 = extent(40, 79, INTR.cx, INTR.fx, 1.5)
    assert trimmed.size[0] == pytest.approx(0.9 * (x1 - x0), rel=0.06)


def test_depth_at_another_resolution_follows_the_clouds_rule():
    """Depth at half the label image's size, with its own intrinsics: the same boxes."""
    frame, depth = scene()
    small = depth[::2, ::2].copy()
    intr = INTR.scaled_to(W // 2, H // 2)
    got = boxes_3d(frame.ids, len(frame), small, intr, trim=0.0, min_points=10)
    cup = got.boxes[0]
    assert cup.center[2] == pytest.approx(1.5) and cup.points == 20 * 20
    x0, x1 = extent(20, 39, intr.cx, intr.fx, 1.5)
    assert cup.center[0] == pytest.approx((x0 + x1) / 2, abs=1e-6)
    with pytest.raises(CameraInfoError):
        boxes_3d(frame.ids, len(frame), small, INTR)


def test_from_the_cloud_equals_from_the_depth():
    frame, depth = scene()
    for stride in (1, 2):
        cloud = build_cloud(depth, frame.ids, np.ones((H, W), np.float32), INTR, stride)
        a = boxes_3d_from_cloud(frame.ids, len(frame), cloud, trim=5.0, min_points=10)
        b = boxes_3d(frame.ids, len(frame), depth, INTR, trim=5.0, min_points=10,
                     stride=stride)
        assert a == b


def test_min_points_leaves_out_and_counts():
    frame, depth = scene()
    depth[30:70, 40:80] = np.nan
    depth[30:32, 40:45] = 1.5  # 10 readings on the cup
    got = boxes_3d(frame.ids, len(frame), depth, INTR, min_points=11)
    assert [b.index for b in got.boxes] == [2] and got.too_few_points == (1, 3)
    got = boxes_3d(frame.ids, len(frame), depth, INTR, min_points=10)
    assert [b.index for b in got.boxes] == [1, 2]


def test_zero_negative_and_infinite_depth_are_no_reading():
    frame, depth = scene()
    depth[30:50, 40:80] = 0.0
    depth[50:60, 40:80] = -1.0
    depth[60:70, 40:60] = np.inf
    got = boxes_3d(frame.ids, len(frame), depth, INTR, trim=0.0, min_points=1)
    assert got.boxes[0].points == 200 and got.boxes[0].center[2] == pytest.approx(1.5)
