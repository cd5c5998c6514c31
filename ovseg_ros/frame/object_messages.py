"""The objects' output messages (rosbags classes, no ROS): the instance image, vision_msgs'
Detection2DArray and Detection3DArray, RViz markers for the 3D boxes, Hydra's class + instance
image and a semantic_inference FeatureImage with one vector per instance.

Conventions (doc/objects.md):

* Instance k of a frame is the value k in ~/instances (16UC1, 0 = none) and the k-th detection
  of the same frame's ~/detections (``detections[k - 1]``); ~/hydra_instances and
  ~/feature_image use the same k.
* Detection2D: ``results[0].hypothesis.class_id`` = the class name (the phrase), ``score`` =
  the mean confidence over the mask, ``bbox`` in pixels with pixel (u, v) covering
  [u, u+1) x [v, v+1): centre ((x0 + x1) / 2, (y0 + y1) / 2), size (x1 - x0, y1 - y0) of the
  half-open mask box, theta 0; ``id`` = the track id as a decimal string. Every detection
  carries the frame's header.
* Detection3D: the same hypothesis and id; ``bbox`` an axis-aligned box in the header's frame
  (the depth's optical frame), orientation identity. Only instances with a 3D box.
* ``results[0].pose`` is not used: identity orientation, zero position and covariance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ovseg_ros.frame.builder import MessageBuilder
from ovseg_ros.frame.messages import image_msg
from ovseg_ros.io import encode_16uc1, encode_32sc1
from ovseg_ros.objects import Boxes3D, FrameInstances, hydra_pack
from ovseg_ros.viz import colour_for_id

BOX_NS, LABEL_NS = "ovseg_objects", "ovseg_object_labels"  # marker namespaces
CUBE, TEXT_VIEW_FACING, ADD, DELETEALL = 1, 9, 0, 3  # visualization_msgs/Marker constants
MIN_MARKER_SIZE_M = 0.01  # a flat box (a wall, a poster) still shows in RViz
BOX_ALPHA = 0.35


def instances_image_msg(b: MessageBuilder, frame: FrameInstances, header: Any) -> Any:
    """~/instances: the instance image as 16UC1."""
    return image_msg(b, encode_16uc1(frame.ids), header)


def hydra_image_msg(b: MessageBuilder, labels: np.ndarray, frame: FrameInstances,
                    header: Any) -> Any:
    """~/hydra_instances: 32SC1, class id in the low 16 bits, instance k in the high 16
    (`objects.hydra`)."""
    return image_msg(b, encode_32sc1(hydra_pack(labels, frame.ids)), header)


def _identity(b: MessageBuilder) -> Any:
    return b.make("geometry_msgs/msg/Quaternion", w=1.0)


def _hypothesis(b: MessageBuilder, name: str, score: float) -> Any:
    pose = b.make("geometry_msgs/msg/PoseWithCovariance",
                  pose=b.make("geometry_msgs/msg/Pose", orientation=_identity(b)))
    return b.make("vision_msgs/msg/ObjectHypothesisWithPose", pose=pose,
                  hypothesis=b.make("vision_msgs/msg/ObjectHypothesis", class_id=name,
                                    score=float(score)))


def detections_2d_msg(b: MessageBuilder, frame: FrameInstances, track_ids: Sequence[int],
                      header: Any) -> Any:
    """~/detections: one Detection2D per instance, in instance order."""
    out = []
    for inst in frame.instances:
        x0, y0, x1, y1 = inst.box
        cx, cy = inst.center
        bbox = b.make("vision_msgs/msg/BoundingBox2D", size_x=float(x1 - x0),
                      size_y=float(y1 - y0), center=b.make(
                          "vision_msgs/msg/Pose2D", theta=0.0,
                          position=b.make("vision_msgs/msg/Point2D", x=cx, y=cy)))
        out.append(b.make("vision_msgs/msg/Detection2D", header=header, bbox=bbox,
                          results=[_hypothesis(b, inst.name, inst.score)],
                          id=str(int(track_ids[inst.index - 1]))))
    return b.make("vision_msgs/msg/Detection2DArray", header=header, detections=out)


def _vector3(b: MessageBuilder, values: Sequence[float]) -> Any:
    x, y, z = (float(v) for v in values)
    return b.make("geometry_msgs/msg/Vector3", x=x, y=y, z=z)


def _pose(b: MessageBuilder, center: Sequence[float]) -> Any:
    x, y, z = (float(v) for v in center)
    return b.make("geometry_msgs/msg/Pose", orientation=_identity(b),
                  position=b.make("geometry_msgs/msg/Point", x=x, y=y, z=z))


def detections_3d_msg(b: MessageBuilder, frame: FrameInstances, track_ids: Sequence[int],
                      boxes: Boxes3D, header: Any) -> Any:
    """~/detections_3d: one Detection3D per instance with a 3D box, in instance order;
    `header` is the depth image's (its optical frame)."""
    out = []
    for box in boxes.boxes:
        inst = frame.instances[box.index - 1]
        bbox = b.make("vision_msgs/msg/BoundingBox3D", center=_pose(b, box.center),
                      size=_vector3(b, box.size))
        out.append(b.make("vision_msgs/msg/Detection3D", header=header, bbox=bbox,
                          results=[_hypothesis(b, inst.name, inst.score)],
                          id=str(int(track_ids[box.index - 1]))))
    return b.make("vision_msgs/msg/Detection3DArray", header=header, detections=out)


def box_label(name: str, track_id: int, distance_m: float) -> str:
    """The text shown above a box: "name #id 1.8 m" (distance from the camera)."""
    return f"{name} #{int(track_id)} {distance_m:.1f} m"


def box_markers_msg(b: MessageBuilder, frame: FrameInstances, track_ids: Sequence[int],
                    boxes: Boxes3D, header: Any, text_size_m: float = 0.1) -> Any:
    """~/detection_markers: DELETEALL, then per 3D box a translucent CUBE (namespace
    ``BOX_NS``) in its class's label-map colour and a TEXT_VIEW_FACING label ``box_label``
    just above it (``LABEL_NS``); marker id = the instance's k."""
    out = [b.make("visualization_msgs/msg/Marker", header=header, ns=BOX_NS, action=DELETEALL)]
    for box in boxes.boxes:
        inst = frame.instances[box.index - 1]
        r, g, bl = (c / 255.0 for c in colour_for_id(inst.class_id))
        size = [max(float(s), MIN_MARKER_SIZE_M) for s in box.size]
        out.append(b.make(
            "visualization_msgs/msg/Marker", header=header, ns=BOX_NS, id=box.index, type=CUBE,
            action=ADD, pose=_pose(b, box.center), scale=_vector3(b, size),
            color=b.make("std_msgs/msg/ColorRGBA", r=r, g=g, b=bl, a=BOX_ALPHA)))
        x, y, z = box.center
        above = (x, y - size[1] / 2.0 - text_size_m, z)  # optical frame: y points down
        out.append(b.make(
            "visualization_msgs/msg/Marker", header=header, ns=LABEL_NS, id=box.index,
            type=TEXT_VIEW_FACING, action=ADD, pose=_pose(b, above),
            text=box_label(inst.name, track_ids[box.index - 1], box.distance),
            scale=b.make("geometry_msgs/msg/Vector3", z=float(text_size_m)),
            color=b.make("std_msgs/msg/ColorRGBA", r=r, g=g, b=bl, a=1.0)))
    return b.make("visualization_msgs/msg/MarkerArray", markers=out)


def instance_feature_image_msg(b: MessageBuilder, frame: FrameInstances, vectors: np.ndarray,
                               header: Any) -> Any:
    """semantic_inference_msgs/FeatureImage with the instances as segments: image = the
    instance image (16UC1), mask_ids 1..N, features[k - 1] = instance k's unit CLIP vector
    (`objects.instance_vectors`, (N, D) float32)."""
    n = len(frame.instances)
    if len(vectors) != n:
        raise ValueError(f"{len(vectors)} vectors for {n} instances")
    rows = np.asarray(vectors, np.float32).reshape(n, -1)
    return b.make("semantic_inference_msgs/msg/FeatureImage", header=header,
                  mask_ids=np.arange(1, n + 1, dtype=np.int32),
                  image=instances_image_msg(b, frame, header),
                  features=[b.make("semantic_inference_msgs/msg/FeatureVector", data=row)
                            for row in rows])
