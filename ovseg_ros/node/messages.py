"""Building the node's output messages from core results (rclpy message types, no node)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ovseg_ros.geometry import ClassPoint
from ovseg_ros.io import ImageFields
from ovseg_ros.msg import ClassStat, LabelEntry, LabelMap, Segmentation
from ovseg_ros.viz import colour_for_id

if TYPE_CHECKING:  # the replay node uses this module and must not pull in torch
    from ovseg_ros.core.results import SegmentationResult

UNLABELLED = "unlabelled"


def stamp_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_time(seconds: float | None) -> Time:
    """Float seconds -> builtin_interfaces/Time; None, NaN or negative -> zero time."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return Time()
    sec = int(seconds)
    nanosec = min(int(round((seconds - sec) * 1e9)), 999_999_999)
    return Time(sec=sec, nanosec=nanosec)


def copy_header(header: Header) -> Header:
    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec),
                  frame_id=header.frame_id)


def image_msg(fields: ImageFields, header: Header) -> Image:
    # array.array assignment skips rclpy's per-byte validation of `bytes` (see ImageFields).
    return Image(header=header, height=fields.height, width=fields.width,
                 encoding=fields.encoding, is_bigendian=fields.is_bigendian, step=fields.step,
                 data=fields.as_array())


def confidence_mono8(confidence: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] -> uint8 0..255 (rounded)."""
    return (np.clip(confidence, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def segmentation_msg(result: SegmentationResult, header: Header, inference_ms: float,
                     latency_ms: float, frames_dropped: int,
                     points_3d: Mapping[int, ClassPoint] | None = None) -> Segmentation:
    """The per-frame summary. ``points_3d`` ({label id: ClassPoint}, from
    ``ovseg_ros.geometry.class_points`` of this frame's cloud) fills each class's median 3D
    point and valid point count; classes without one get NaN and 0."""
    msg = Segmentation(header=header, keyframe=bool(result.keyframe),
                       keyframe_stamp=seconds_to_time(result.keyframe_stamp),
                       inference_ms=float(inference_ms), latency_ms=float(latency_ms),
                       frames_dropped=min(int(frames_dropped), 2**32 - 1),
                       vocabulary_version=int(result.vocabulary_version))
    points_3d = points_3d or {}
    classes = []
    for s in result.stats:
        cp = points_3d.get(s.class_id)
        x, y, z = cp.median if cp is not None else (math.nan, math.nan, math.nan)
        classes.append(ClassStat(
            class_id=s.class_id, class_name=s.class_name,
            pixel_fraction=float(s.pixel_fraction), mean_confidence=float(s.mean_confidence),
            presence=float(s.presence), median_point=Point(x=x, y=y, z=z),
            valid_points=min(cp.count, 2**32 - 1) if cp is not None else 0))
    msg.classes = classes
    return msg


def label_entries(names: Sequence[str], ids: Sequence[int],
                  background: bool) -> list[tuple[int, str]]:
    """(id, name) for every id the label image can hold, 0 first."""
    zero = "background" if background else UNLABELLED
    return [(0, zero)] + [(int(i), str(n)) for i, n in zip(ids, names, strict=True)]


def label_map_msg(names: Sequence[str], ids: Sequence[int], background: bool, version: int,
                  stamp: Time) -> LabelMap:
    msg = LabelMap(background=background, version=int(version))
    msg.header.stamp = stamp
    entries = []
    for cid, name in label_entries(names, ids, background):
        r, g, b = colour_for_id(cid)
        entries.append(LabelEntry(class_id=cid, class_name=name, r=r, g=g, b=b))
    msg.labels = entries
    return msg


def label_info_msg(label_info_type, vision_class_type, names: Sequence[str],
                   ids: Sequence[int], background: bool, threshold: float, stamp: Time):
    """vision_msgs/LabelInfo for the vocabulary (types passed in: the import is optional)."""
    msg = label_info_type(threshold=float(threshold))
    msg.header.stamp = stamp
    msg.class_map = [vision_class_type(class_id=cid, class_name=name)
                     for cid, name in label_entries(names, ids, background)]
    return msg


def legend_for(result: SegmentationResult) -> list[tuple[int, str]]:
    """Overlay legend: classes visible in the frame, largest first."""
    shown = sorted((s for s in result.stats if s.pixel_fraction > 0),
                   key=lambda s: -s.pixel_fraction)
    return [(s.class_id, s.class_name) for s in shown]
