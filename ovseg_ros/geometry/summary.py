"""Per-class 3D summaries of a semantic cloud: the median point and the number of valid points.

The median is taken per axis over the class's points with a depth reading. Unlike the mean it
stays on the object when a few pixels at its border see the background behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cloud import SemanticCloud
from .intrinsics import nearest_index


@dataclass(frozen=True)
class ClassPoint:
    """Median (x, y, z) in metres (optical frame) and the count of valid points of a class."""

    class_id: int
    median: tuple[float, float, float]
    count: int


def class_points(cloud: SemanticCloud) -> dict[int, ClassPoint]:
    """{label id: ClassPoint} for every id with at least one valid point (0 included), in
    increasing id order. Ids whose points all lack depth are absent.

    One sort by label (a radix sort: stable, 16-bit keys), then per class and axis an
    in-place partition of a contiguous slice: O(N) per axis, a Python loop over classes only.
    """
    pts = cloud.points.reshape(-1)
    idx = np.flatnonzero(~np.isnan(pts["z"]))
    if idx.size == 0:
        return {}
    labels = np.take(pts["label"], idx)
    keys = labels.astype(np.uint16) if int(labels.max()) < 65536 else labels
    order = np.argsort(keys, kind="stable")
    idx, labels = idx[order], labels[order]
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]).tolist()
    ends = starts[1:] + [labels.size]
    medians = np.empty((len(starts), 3))
    for axis, name in enumerate(("x", "y", "z")):
        values = np.take(pts[name], idx)  # grouped by class; partitioned in place below
        for g, (a, b) in enumerate(zip(starts, ends, strict=True)):
            medians[g, axis] = _median_inplace(values[a:b])
    return {int(labels[a]): ClassPoint(int(labels[a]), tuple(float(v) for v in medians[g]),
                                       b - a)
            for g, (a, b) in enumerate(zip(starts, ends, strict=True))}


def _median_inplace(seg: np.ndarray) -> float:
    """Median of a 1-D float array (reorders it): the middle element, or the mean of the two."""
    n = seg.size
    k = n // 2
    if n % 2:
        seg.partition(k)
        return float(seg[k])
    seg.partition((k - 1, k))
    return (float(seg[k - 1]) + float(seg[k])) / 2.0


def mask_point(cloud: SemanticCloud, mask: np.ndarray) -> tuple[tuple[float, float, float], int]:
    """Per-axis median (x, y, z) of the cloud's valid points under `mask`, and their count.

    mask: (h, w) bool at the label image's size; each cloud point is tested at the label-image
    pixel it was labelled from (`build_cloud`'s nearest-centre sampling). (NaN, NaN, NaN), 0
    when no point under the mask has a depth reading."""
    h, w = cloud.intrinsics.height, cloud.intrinsics.width
    rows = nearest_index(h, mask.shape[0], cloud.stride)
    cols = nearest_index(w, mask.shape[1], cloud.stride)
    sampled = mask[rows, cols] if isinstance(rows, slice) and isinstance(cols, slice) \
        else mask[rows][:, cols]
    pts = cloud.points[sampled]
    pts = pts[~np.isnan(pts["z"])]
    if pts.size == 0:
        return (float("nan"),) * 3, 0
    return tuple(_median_inplace(np.array(pts[a])) for a in ("x", "y", "z")), int(pts.size)
