"""The output messages of a frame and of a vocabulary, built from core results without ROS
(rosbags message classes of one distro, `builder.MessageBuilder`).

Label ids: 0 is background (with `background`) or "no class", for every consumer (Nav2's
semantic layer reads 0 as no class); vision_msgs' LabelInfo comment suggests the largest id for
"unlabelled" instead, so LabelInfo's class map always names id 0 explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ovseg_ros.core.vocabulary import VocabularySnapshot
from ovseg_ros.frame.builder import MessageBuilder
from ovseg_ros.geometry import ClassPoint
from ovseg_ros.io import ImageFields
from ovseg_ros.viz import colour_for_id

if TYPE_CHECKING:  # torch-free users (the replay node) import the helpers below
    from ovseg_ros.core.features import FrameFeatures
    from ovseg_ros.core.results import SegmentationResult

UNLABELLED = "unlabelled"
UINT32_MAX = 2**32 - 1


@dataclass(frozen=True)
class FeatureSpace:
    """Names the space feature vectors live in: comparable maps have equal values."""

    model: str
    weights_id: str
    version: str


def stamp_seconds(stamp: Any) -> float:
    """Seconds of a builtin_interfaces/Time (any implementation)."""
    return stamp.sec + stamp.nanosec * 1e-9


def time_of(seconds: float | None) -> tuple[int, int]:
    """Float seconds -> (sec, nanosec); None, NaN or negative -> (0, 0)."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return 0, 0
    sec = int(seconds)
    return sec, min(int(round((seconds - sec) * 1e9)), 999_999_999)


def confidence_mono8(confidence: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] -> uint8 0..255 (rounded)."""
    return (np.clip(confidence, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def label_entries(names: Sequence[str], ids: Sequence[int],
                  background: bool) -> list[tuple[int, str]]:
    """(id, name) for every id the label image can hold, 0 first."""
    zero = "background" if background else UNLABELLED
    return [(0, zero)] + [(int(i), str(n)) for i, n in zip(ids, names, strict=True)]


def legend_for(result: SegmentationResult) -> list[tuple[int, str]]:
    """Overlay legend: classes visible in the frame, largest first."""
    shown = sorted((s for s in result.stats if s.pixel_fraction > 0),
                   key=lambda s: -s.pixel_fraction)
    return [(s.class_id, s.class_name) for s in shown]


def image_msg(b: MessageBuilder, fields: ImageFields, header: Any) -> Any:
    return b.make("sensor_msgs/msg/Image", header=header, height=fields.height,
                  width=fields.width, encoding=fields.encoding,
                  is_bigendian=fields.is_bigendian, step=fields.step,
                  data=np.frombuffer(fields.data, np.uint8))


def segmentation_msg(b: MessageBuilder, result: SegmentationResult, header: Any,
                     inference_ms: float, latency_ms: float, frames_dropped: int,
                     points_3d: Mapping[int, ClassPoint] | None = None) -> Any:
    """The per-frame summary. ``points_3d`` ({label id: ClassPoint} of this frame's cloud)
    fills each class's median 3D point and valid point count; others get NaN and 0."""
    points_3d = points_3d or {}
    classes = []
    for s in result.stats:
        cp = points_3d.get(s.class_id)
        x, y, z = cp.median if cp is not None else (math.nan, math.nan, math.nan)
        classes.append(b.make(
            "ovseg_ros/msg/ClassStat", class_id=s.class_id, class_name=s.class_name,
            pixel_fraction=float(s.pixel_fraction), mean_confidence=float(s.mean_confidence),
            presence=float(s.presence),
            median_point=b.make("geometry_msgs/msg/Point", x=float(x), y=float(y), z=float(z)),
            valid_points=min(cp.count, UINT32_MAX) if cp is not None else 0))
    sec, nanosec = time_of(result.keyframe_stamp)
    return b.make(
        "ovseg_ros/msg/Segmentation", header=header,
        vocabulary_version=int(result.vocabulary_version), classes=classes,
        keyframe=bool(result.keyframe),
        keyframe_stamp=b.make("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec),
        inference_ms=float(inference_ms), latency_ms=float(latency_ms),
        frames_dropped=min(int(frames_dropped), UINT32_MAX))


def label_map_msg(b: MessageBuilder, vocab: VocabularySnapshot, header: Any) -> Any:
    entries = []
    for cid, name in label_entries(vocab.names, vocab.ids, vocab.background):
        r, g, bl = colour_for_id(cid)
        entries.append(b.make("ovseg_ros/msg/LabelEntry", class_id=cid, class_name=name, r=r,
                              g=g, b=bl))
    return b.make("ovseg_ros/msg/LabelMap", header=header, labels=entries,
                  background=vocab.background, version=int(vocab.version))


def label_info_msg(b: MessageBuilder, vocab: VocabularySnapshot, threshold: float,
                   header: Any) -> Any:
    """vision_msgs/LabelInfo; `header.frame_id` is the camera's frame."""
    classes = [b.make("vision_msgs/msg/VisionClass", class_id=cid, class_name=name)
               for cid, name in label_entries(vocab.names, vocab.ids, vocab.background)]
    return b.make("vision_msgs/msg/LabelInfo", header=header, class_map=classes,
                  threshold=float(threshold))


def feature_map_msg(b: MessageBuilder, feats: FrameFeatures, header: Any,
                    space: FeatureSpace, logit_scale: float) -> Any:
    """FeatureMap: float16 L2-normalised vectors, row-major height x width x dim."""
    import torch

    grid = feats.grid_hwd(torch.float16).numpy().astype("<f2", copy=False)
    (h, w), (hi, wi), (hs, ws) = feats.grid, feats.image_size, feats.processing_size
    return b.make(
        "ovseg_ros/msg/FeatureMap", header=header, height=h, width=w, dim=feats.dim,
        image_height=hi, image_width=wi, processing_height=hs, processing_width=ws,
        patch_size=feats.patch, encoding="float16", logit_scale=float(logit_scale),
        data=np.ascontiguousarray(grid).view(np.uint8).reshape(-1), model=space.model,
        weights_id=space.weights_id, feature_version=space.version)


def label_regions(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected regions (4-connectivity) of each non-zero label id -> (H, W) int32 segment ids
    1..n in order of label id, then of the regions' first pixel in row-major order; 0 where
    the label is 0 (background or unlabelled: no segment)."""
    import cv2

    segments = np.zeros(labels.shape, np.int32)
    count = 0
    for cid in np.unique(labels):
        if cid == 0:
            continue
        n, comp = cv2.connectedComponents((labels == cid).astype(np.uint8), connectivity=4,
                                          ltype=cv2.CV_32S)
        inside = comp > 0
        segments[inside] = comp[inside] + count
        count += n - 1
    return segments, count


def feature_image_msg(b: MessageBuilder, result: SegmentationResult, header: Any) -> Any | None:
    """semantic_inference_msgs/FeatureImage: segment ids = the label image's connected regions
    (16UC1 as semantic_inference publishes them, 0 = none), mask_ids 1..N, one vector per
    segment = the mean unit feature over its pixels (each pixel taking its patch's vector; not
    renormalised). None above 65535 segments (they do not fit 16 bits)."""
    import torch

    from ovseg_ros.core.features import segment_means
    from ovseg_ros.io import encode_16uc1

    segments, count = label_regions(result.labels)
    if count > 65535:
        return None
    means = segment_means(result.features, torch.from_numpy(segments.astype(np.int64)), count)
    image = image_msg(b, encode_16uc1(segments.astype(np.uint16)), header)
    vectors = [b.make("semantic_inference_msgs/msg/FeatureVector", data=row)
               for row in means.numpy().astype(np.float32)]
    return b.make("semantic_inference_msgs/msg/FeatureImage", header=header,
                  mask_ids=np.arange(1, count + 1, dtype=np.int32), image=image,
                  features=vectors)
