"""A frame's objects for its outputs: instances and track ids (the camera's tracker, fed in
frame order), 3D boxes from the frame's cloud and one CLIP vector per instance, each made on
first use and once (objects/ computes them; this module decides when).

The step gives every frame an `ObjectsOfFrame` while the `objects` setting is on; the output
rows (frame/outputs.py), the node's ~/query and `ovseg segment`'s COCO file read it. A frame
whose objects nobody reads never reaches the tracker: to it that is a dropped frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.frame.log import FrameLog
from ovseg_ros.objects.config import ObjectsConfig


class ObjectsOfFrame:
    """One frame's objects, made lazily. `found` is None when the frame has too many regions
    for the 16-bit instance image (logged)."""

    def __init__(self, make: Callable[[], Any], config: ObjectsConfig, result: SegmentationResult,
                 cloud: Callable[[], Any]) -> None:
        self._make, self.config, self.result, self._cloud = make, config, result, cloud
        self._lock = threading.RLock()  # the query worker may read what the frame thread makes
        self._found: Any = None
        self._boxes: Any = None
        self._vectors: np.ndarray | None = None
        self._done: set[str] = set()

    def _once(self, what: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if what not in self._done:
                setattr(self, f"_{what}", make())
                self._done.add(what)
            return getattr(self, f"_{what}")

    @property
    def made(self) -> bool:
        """Whether the instances were made (without making them)."""
        return "found" in self._done

    @property
    def found(self) -> Any:
        """objects.FrameObjects (instances and track ids), or None."""
        return self._once("found", self._make)

    @property
    def boxes(self) -> Any:
        """objects.Boxes3D of the instances, from the frame's organized cloud; None without
        depth (or without instances)."""
        def make() -> Any:
            from ovseg_ros.objects import boxes_3d_from_cloud

            found, cloud = self.found, self._cloud()
            if found is None or cloud is None:
                return None
            inst = found.instances
            return boxes_3d_from_cloud(inst.ids, len(inst), cloud, self.config.box_trim_percent,
                                       self.config.box_min_points)
        return self._once("boxes", make)

    @property
    def vectors(self) -> np.ndarray | None:
        """(N, D) unit CLIP vectors of the instances, or None without features (slide
        mode) or instances."""
        def make() -> np.ndarray | None:
            from ovseg_ros.objects import instance_vectors

            found, feats = self.found, self.result.features
            if found is None or feats is None:
                return None
            return instance_vectors(feats, found.instances.ids, len(found.instances))
        return self._once("vectors", make)


class StepObjects:
    """Each camera's tracker, and the `ObjectsOfFrame` of its frames (frame thread only)."""

    def __init__(self, log: FrameLog) -> None:
        self.log = log
        self._cameras: dict[str, Any] = {}  # camera -> objects.CameraObjects

    def for_frame(self, camera: str, config: ObjectsConfig, result: SegmentationResult,
                  stamp: float, cloud: Callable[[], Any]) -> ObjectsOfFrame:
        from ovseg_ros.objects import CameraObjects

        cam = self._cameras.get(camera)
        if cam is None:
            cam = self._cameras[camera] = CameraObjects(config)
        elif cam.config != config:
            cam.reconfigure(config)  # tracks go on
        return ObjectsOfFrame(lambda: self._update(cam, result, stamp), config, result, cloud)

    def _update(self, cam: Any, result: SegmentationResult, stamp: float) -> Any:
        from ovseg_ros.objects import InstanceError

        names = dict(zip(result.class_ids, result.class_names, strict=True))
        try:
            return cam.update(result.labels, result.confidence, names, stamp or None)
        except InstanceError as exc:
            self.log.refused("too many objects", f"no objects for this frame: {exc}")
            return None
