"""A camera's feature outputs and its latest frame: ~/features (FeatureMap), ~/feature_image
(semantic_inference_msgs/FeatureImage, when importable), and the slot ~/query answers from.

Runs on the worker thread (`on_frame`, called at the end of Camera.publish); the query service
reads the slot from executor threads. The slot is swapped under a lock held only for the
assignment, so a query never holds up the frame path. Both topics cost nothing while nobody
subscribes (the messages are built only when someone does).
"""

from __future__ import annotations

import array
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from std_msgs.msg import Header

from ovseg_ros.core.features import FEATURE_VERSION, LOGIT_SCALE, FrameFeatures, segment_means
from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.geometry import SemanticCloud
from ovseg_ros.io import encode_labels
from ovseg_ros.msg import FeatureMap
from ovseg_ros.node import messages as m

try:  # optional: MIT-SPARK's interfaces (Khronos, Clio); the tests build a copy
    from semantic_inference_msgs.msg import FeatureImage, FeatureVector
except ImportError:
    FeatureImage = FeatureVector = None


@dataclass(frozen=True)
class LatestFrame:
    """What ~/query answers from: the frame's header, its result (with the kept features) and,
    with depth, its organized cloud."""

    camera: str
    header: Header
    result: SegmentationResult
    cloud: SemanticCloud | None


@dataclass(frozen=True)
class FeatureSpace:
    """Names the space the vectors live in: comparable maps have equal values."""

    model: str
    weights_id: str
    version: str = FEATURE_VERSION


class FeatureOutputs:
    """One camera's ~/features and ~/feature_image publishers and latest-frame slot."""

    def __init__(self, camera: str, features: Any, feature_image: Any | None,
                 space: FeatureSpace) -> None:
        self.camera = camera
        self.features = features
        self.feature_image = feature_image
        self.space = space
        self._lock = threading.Lock()
        self._latest: LatestFrame | None = None

    @property
    def publishers(self) -> list[Any]:
        return [p for p in (self.features, self.feature_image) if p is not None]

    def latest(self) -> LatestFrame | None:
        with self._lock:
            return self._latest

    def clear(self) -> None:
        with self._lock:
            self._latest = None

    def on_frame(self, result: SegmentationResult, header: Header,
                 cloud: SemanticCloud | None) -> None:
        """Keep the frame for queries (a reference swap) and publish what is subscribed."""
        latest = LatestFrame(self.camera, header, result, cloud)
        with self._lock:
            self._latest = latest
        feats = result.features
        if feats is None:
            return
        if self.features.get_subscription_count() > 0:
            self.features.publish(feature_map_msg(feats, header, self.space))
        if self.feature_image is not None and self.feature_image.get_subscription_count() > 0:
            msg = feature_image_msg(result, header)
            if msg is not None:
                self.feature_image.publish(msg)


def feature_map_msg(feats: FrameFeatures, header: Header, space: FeatureSpace) -> FeatureMap:
    """FeatureMap: float16 L2-normalised vectors, row-major height x width x dim."""
    grid = feats.grid_hwd(torch.float16).numpy().astype("<f2", copy=False)
    data = array.array("B")
    data.frombytes(grid.tobytes())
    (h, w), (hi, wi), (hs, ws) = feats.grid, feats.image_size, feats.processing_size
    return FeatureMap(header=header, height=h, width=w, dim=feats.dim, image_height=hi,
                      image_width=wi, processing_height=hs, processing_width=ws,
                      patch_size=feats.patch, encoding="float16", logit_scale=LOGIT_SCALE,
                      data=data, model=space.model, weights_id=space.weights_id,
                      feature_version=space.version)


def label_regions(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected regions (4-connectivity) of each non-zero label id -> (H, W) int32 segment ids
    1..n in order of label id, then of the regions' first pixel in row-major order; 0 where
    the label is 0 (background or unlabelled: no segment)."""
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


def feature_image_msg(result: SegmentationResult, header: Header):
    """semantic_inference_msgs/FeatureImage: segment ids = the label image's connected regions
    (mono16, 0 = none), mask_ids 1..N, one vector per segment = the mean unit feature over its
    pixels (each pixel taking its patch's vector; not renormalised). None above 65535
    segments (they do not fit mono16)."""
    segments, count = label_regions(result.labels)
    if count > 65535:  # mono16 ids, as semantic_inference publishes them
        return None
    means = segment_means(result.features, torch.from_numpy(segments.astype(np.int64)), count)
    image = m.image_msg(encode_labels(segments.astype(np.uint16), force_mono16=True), header)
    vectors = [FeatureVector(data=row) for row in means.numpy().astype(np.float32)]
    return FeatureImage(header=header, mask_ids=list(range(1, count + 1)), image=image,
                        features=vectors)
