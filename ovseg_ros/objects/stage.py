"""One camera's objects per frame: instances, then track ids (what the frame step calls)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .config import ObjectsConfig
from .instances import FrameInstances, find_instances
from .tracking import Tracker


@dataclass(frozen=True)
class FrameObjects:
    """A frame's instances and their track ids ((N,) int64, aligned with the instances)."""

    instances: FrameInstances
    track_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.instances)


class CameraObjects:
    """Instances and tracks of one camera's frames, in frame order (one caller at a time)."""

    def __init__(self, config: ObjectsConfig) -> None:
        self.config = config
        self.tracker = Tracker(config.track_max_age_frames, config.track_max_age_s,
                               config.track_min_iou)

    def reconfigure(self, config: ObjectsConfig) -> None:
        """New settings from the next frame on; tracks and ids go on."""
        self.config = config
        self.tracker.reconfigure(config.track_max_age_frames, config.track_max_age_s,
                                 config.track_min_iou)

    def update(self, labels: np.ndarray, confidence: np.ndarray, names: Mapping[int, str],
               stamp: float | None) -> FrameObjects:
        """labels (H, W) uint8/uint16, confidence (H, W) float32 and {class id: name} of
        the frame's vocabulary; stamp in seconds (None or 0: unstamped)."""
        cfg = self.config
        frame = find_instances(labels, confidence, names, cfg.object_min_area,
                               cfg.object_close_gaps_px)
        return FrameObjects(frame, self.tracker.update(frame, stamp))
