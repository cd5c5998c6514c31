"""Objects from the dense labels: instances (connected regions of each class present), track
ids per camera, 3D boxes from registered depth, one CLIP vector per instance, and the
formats consumers read (Hydra's class+instance image, COCO results). numpy, OpenCV and
scipy; ROS-free, and torch-free at import (the vectors import it inside their function)."""

from ovseg_ros.objects.boxes3d import Box3D, Boxes3D, boxes_3d, boxes_3d_from_cloud
from ovseg_ros.objects.coco import coco_results, rle_decode, rle_encode
from ovseg_ros.objects.config import ObjectsConfig
from ovseg_ros.objects.hydra import HYDRA_MAX_INSTANCE, hydra_decode, hydra_pack
from ovseg_ros.objects.instances import CONNECTIVITY, FrameInstances, Instance, find_instances
from ovseg_ros.objects.ranking import InstanceScore, rank_instances
from ovseg_ros.objects.stage import CameraObjects, FrameObjects
from ovseg_ros.objects.tracking import Tracker
from ovseg_ros.objects.vectors import instance_vectors

__all__ = [
    "CONNECTIVITY",
    "HYDRA_MAX_INSTANCE",
    "Box3D",
    "Boxes3D",
    "CameraObjects",
    "FrameInstances",
    "FrameObjects",
    "Instance",
    "InstanceScore",
    "ObjectsConfig",
    "Tracker",
    "boxes_3d",
    "boxes_3d_from_cloud",
    "coco_results",
    "find_instances",
    "hydra_decode",
    "hydra_pack",
    "instance_vectors",
    "rank_instances",
    "rle_decode",
    "rle_encode",
]
