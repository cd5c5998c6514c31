"""Benchmark section `points`: the 3D path per frame against the frame's inference, same run.

Per size (the camera sizes, 640x480 and 1280x720 by default), interleaved round by round:
`inference` (Segmenter.segment on the frame) and `points` (decode a 16UC1 depth message,
project and pack the organized cloud, per-class medians, copy the bytes the way the
PointCloud2 builder does). Depth is the synthetic sample depth at the frame's resolution;
timing does not depend on its values. No ROS needed.
"""

from __future__ import annotations

import array
import time
from typing import Any

import numpy as np

from ovseg_ros.core import Segmenter
from ovseg_ros.geometry import PinholeIntrinsics, build_cloud, class_points, decode_depth
from ovseg_ros.geometry.synthetic import synthetic_depth
from ovseg_ros.io import encode_16uc1

from .images import sample_images
from .timing import discard, interleave, paired_ratio, summarise


def bench_points(seg: Segmenter, size: tuple[int, int], reps: int, stride: int = 1
                 ) -> dict[str, Any]:
    """One frame size (H, W): stages of the 3D path and its share of the inference time."""
    rgb = sample_images(size, 1)[0]
    res = seg.segment(rgb)
    fake = synthetic_depth(rgb)
    depth_msg = encode_16uc1(fake.depth_mm)
    data = bytearray(depth_msg.data)  # what a received sensor_msgs/Image carries
    k = [fake.intrinsics.fx, 0.0, fake.intrinsics.cx, 0.0, fake.intrinsics.fy,
         fake.intrinsics.cy, 0.0, 0.0, 1.0]
    h, w = size

    def points() -> dict[str, float]:
        t0 = time.perf_counter()
        depth = decode_depth("16UC1", h, w, depth_msg.step, 0, data)
        t1 = time.perf_counter()
        intr = PinholeIntrinsics.from_camera_info(k, w, h).for_image(w, h)
        cloud = build_cloud(depth, res.labels, res.confidence, intr, stride)
        t2 = time.perf_counter()
        class_points(cloud)
        t3 = time.perf_counter()
        out = array.array("B")
        out.frombytes(cloud.data())
        t4 = time.perf_counter()
        return {"decode_depth": t1 - t0, "project_pack": t2 - t1, "class_medians": t3 - t2,
                "message_copy": t4 - t3}

    samples = interleave({"inference": discard(seg.segment, rgb), "points": points}, reps,
                         device=seg.runtime.device)
    ratio = paired_ratio(samples["points"]["total"], samples["inference"]["total"])
    return {"size": list(size), "stride": stride, "points": int(np.ceil(h / stride))
            * int(np.ceil(w / stride)), "stages": summarise(samples),
            "ratios": {"points_vs_inference": ratio}}
