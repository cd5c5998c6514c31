"""Objects from the dense labels: instances (connected regions of each class present), track
ids per camera, 3D boxes from registered depth, one CLIP vector per instance, and the
formats consumers read (Hydra's class + instance image, COCO results). numpy, OpenCV and
scipy; ROS-free, and torch-free at import (the vectors import it inside their function).

The names below are loaded on first use, so `ovseg_ros.objects.config` (part of the settings
schema the launch file, the CLI and the docs generator read) imports without OpenCV or scipy.
"""

from __future__ import annotations

from ovseg_ros.core.lazy import lazy_exports

_EXPORTS = {
    "Box3D": "boxes3d",
    "Boxes3D": "boxes3d",
    "CONNECTIVITY": "instances",
    "CameraObjects": "stage",
    "FrameInstances": "instances",
    "FrameObjects": "stage",
    "HYDRA_MAX_INSTANCE": "hydra",
    "Instance": "instances",
    "InstanceError": "instances",
    "InstanceScore": "ranking",
    "ObjectsConfig": "config",
    "Tracker": "tracking",
    "boxes_3d": "boxes3d",
    "boxes_3d_from_cloud": "boxes3d",
    "coco_results": "coco",
    "find_instances": "instances",
    "hydra_decode": "hydra",
    "hydra_pack": "hydra",
    "instance_vectors": "vectors",
    "rank_instances": "ranking",
    "rle_decode": "coco",
    "rle_encode": "coco",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
