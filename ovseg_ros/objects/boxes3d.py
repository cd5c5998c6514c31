"""3D boxes of a frame's instances from registered depth: axis-aligned, in the depth's optical
frame (x right, y down, z forward, metres).

Each depth pixel (u, v) with a reading z is back-projected to (x, y, z) = ((u - cx) z / fx,
(v - cy) z / fy, z) and takes the instance of the label-image pixel it was labelled from, by
the cloud's rule: a depth image of another resolution (the same aspect ratio) samples the
instance image at the nearest pixel centre (`geometry.nearest_index`). Per instance and axis
the box spans the `trim`-th to the (100 - trim)-th percentile of its points (linear
interpolation), so a few pixels at the mask's border that see the background behind the object
do not stretch it; centre = the middle of that span, size = its length. With trim 0 it is the
full extent of the points (pixel centres: a plane facing the camera at distance z covering
pixels u0..u1 spans (u1 - u0) z / fx). Instances with fewer than `min_points` valid points get
no box and are listed in `too_few_points`.

Cost: one stable radix sort of the instance pixels that have depth (16-bit keys), then per
instance and axis one partition of a contiguous slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ovseg_ros.geometry import (
    PinholeIntrinsics,
    SemanticCloud,
    nearest_index,
    pixel_rays,
)
from ovseg_ros.geometry.intrinsics import check_depth_fits, check_resized


@dataclass(frozen=True)
class Box3D:
    """An instance's box: centre and size (x, y, z) in metres, and its point count."""

    index: int  # the instance's k (1-based, as in the instance image)
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    points: int

    @property
    def distance(self) -> float:
        """Metres from the camera's optical centre to the box centre."""
        return math.sqrt(sum(c * c for c in self.center))


@dataclass(frozen=True)
class Boxes3D:
    """The boxes of a frame (instance order) and the instances left without one."""

    boxes: tuple[Box3D, ...]
    too_few_points: tuple[int, ...]  # instance indices k with fewer than min_points


def _sample(ids: np.ndarray, height: int, width: int, stride: int) -> np.ndarray:
    rows = nearest_index(height, ids.shape[0], stride)
    cols = nearest_index(width, ids.shape[1], stride)
    if isinstance(rows, slice) and isinstance(cols, slice):
        return ids[rows, cols]
    return ids[rows][:, cols]


def boxes_3d(ids: np.ndarray, count: int, depth: np.ndarray, intrinsics: PinholeIntrinsics,
             trim: float = 5.0, min_points: int = 20, stride: int = 1) -> Boxes3D:
    """Boxes of instances 1..count of the instance image `ids` (h, w) from `depth` (H, W)
    float32 metres (NaN, 0, negative or Inf: no reading) with the depth image's intrinsics.
    stride >= 1 keeps every stride-th depth row and column (as ~/points does). Raises
    CameraInfoError when the intrinsics or the instance image do not fit the depth image."""
    if depth.ndim != 2 or depth.dtype.kind != "f":
        raise ValueError(f"boxes_3d: depth must be (H, W) float, got {depth.shape} {depth.dtype}")
    h, w = depth.shape
    check_depth_fits(intrinsics, (h, w), ids.shape)
    inst = _sample(ids, h, w, stride)
    z = depth[::stride, ::stride]
    rv, cu = np.nonzero((inst > 0) & (z > 0) & (z < np.inf))
    zs = z[rv, cu].astype(np.float32)
    rx, ry = pixel_rays(intrinsics, stride)
    # float32 products, as build_cloud makes them: the same boxes from either path
    xyz = np.stack([rx[cu] * zs, ry[rv] * zs, zs], axis=1).astype(np.float64)
    return _boxes(inst[rv, cu], xyz, count, trim, min_points)


def boxes_3d_from_cloud(ids: np.ndarray, count: int, cloud: SemanticCloud, trim: float = 5.0,
                        min_points: int = 20) -> Boxes3D:
    """The same from a semantic cloud already built for the frame (its points, stride and
    intrinsics): no second back-projection."""
    intr = cloud.intrinsics
    check_resized((ids.shape[1], ids.shape[0]), (intr.width, intr.height))
    inst = _sample(ids, intr.height, intr.width, cloud.stride)
    pts = cloud.points
    rv, cu = np.nonzero((inst > 0) & ~np.isnan(pts["z"]))
    sel = pts[rv, cu]
    xyz = np.stack([sel["x"], sel["y"], sel["z"]], axis=1).astype(np.float64)
    return _boxes(inst[rv, cu], xyz, count, trim, min_points)


def _boxes(inst: np.ndarray, xyz: np.ndarray, count: int, trim: float,
           min_points: int) -> Boxes3D:
    """Per-instance trimmed spans of points xyz (M, 3) labelled inst (M,) in 1..count."""
    if not 0.0 <= trim < 50.0:
        raise ValueError(f"trim must be in [0, 50), got {trim}")
    order = np.argsort(inst.astype(np.uint16, copy=False), kind="stable")
    inst, xyz = inst[order], xyz[order]
    counts = np.bincount(inst, minlength=count + 1)[:count + 1]
    ends = np.cumsum(counts)
    starts = ends - counts
    boxes, few = [], []
    for k in range(1, count + 1):
        n = int(counts[k])
        if n < max(int(min_points), 1):
            few.append(k)
            continue
        seg = xyz[starts[k]:ends[k]]
        lo, hi = np.percentile(seg, [trim, 100.0 - trim], axis=0)
        boxes.append(Box3D(k, tuple(float(v) for v in (lo + hi) / 2.0),
                           tuple(float(v) for v in hi - lo), n))
    return Boxes3D(tuple(boxes), tuple(few))
