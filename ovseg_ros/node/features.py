"""A camera's feature space and its latest frame, the slot ~/query answers from. The feature
messages (~/features, ~/feature_image) are rows of the output table (frame/outputs.py).

The worker keeps each published frame here (`keep`); the query service reads the slot from
executor threads. The slot is swapped under a lock held only for the assignment, so a query
never holds up the frame path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.frame.messages import FeatureSpace
from ovseg_ros.geometry import SemanticCloud

__all__ = ["FeatureOutputs", "FeatureSpace", "LatestFrame"]


@dataclass(frozen=True)
class LatestFrame:
    """What ~/query answers from: the frame's header, its result (with the kept features) and,
    with depth, its organized cloud."""

    camera: str
    header: Any  # std_msgs/Header fields (stamp, frame_id)
    result: SegmentationResult
    cloud: SemanticCloud | None
    objects: Any = None  # frame.objects.ObjectsOfFrame with the `objects` setting on


class FeatureOutputs:
    """One camera's feature space (what its ~/features vectors are comparable with) and
    latest-frame slot."""

    def __init__(self, camera: str, space: FeatureSpace) -> None:
        self.camera = camera
        self.space = space
        self._lock = threading.Lock()
        self._latest: LatestFrame | None = None

    def latest(self) -> LatestFrame | None:
        with self._lock:
            return self._latest

    def clear(self) -> None:
        with self._lock:
            self._latest = None

    def keep(self, frame: Any) -> None:
        """Keep a published frame (frame.step.FrameResult) for queries."""
        latest = LatestFrame(self.camera, frame.header, frame.result, frame.cloud,
                             frame.objects)
        with self._lock:
            self._latest = latest
