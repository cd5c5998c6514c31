"""Every output, one row each: its name, message type, QoS, when it exists, whether it is
costly, and how its message is built from a frame. The frame step builds the rows its sink
wants (in table order), the node makes one publisher per row, `ovseg bag` one topic per row,
and the docs list them from here: adding an output is adding a row.

Rows are plain data; builders take the step and the frame (`build(step, frame)`) and return
the message, or None when the frame has nothing for it (no cloud without depth, no features
in slide mode). The node turns `qos` into rclpy profiles, the bag into rosbags' QoS records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ovseg_ros.frame import cloud_messages, messages, object_messages
from ovseg_ros.io import encode_float, encode_labels, encode_mono8, encode_rgb

# The builders' arguments: the step (step.FrameStep) and the frame (step.FrameResult); named
# here, not imported, since the step reads this table.
FrameStep = FrameResult = Any


@dataclass(frozen=True)
class QosSpec:
    """The QoS a publisher offers (keep-last history)."""

    depth: int
    reliable: bool = True
    transient_local: bool = False


# Reliable publishers match both reliable and best-effort subscribers.
OUTPUT_QOS = QosSpec(depth=5)
# ~/label_map and ~/label_info: late subscribers (Nav2's layer) get the current vocabulary.
LATCHED_QOS = QosSpec(depth=1, transient_local=True)
SENSOR_QOS = QosSpec(depth=5, reliable=False)  # a camera driver's default

IMAGE = "sensor_msgs/msg/Image"


class OutputSettings(NamedTuple):
    """The settings an output's existence depends on."""

    node: Any  # settings.parameters.NodeConfig
    objects: Any  # objects.config.ObjectsConfig


@dataclass(frozen=True)
class Output:
    """One output. `optional`: costly or rarely read, so the node builds it only while someone
    subscribes, and `ovseg bag` writes it only when asked (`--with NAME`); the others are
    built for every frame. `needs`: "depth" (the camera has registered depth) and/or
    "features" (mode whole keeps the refined features). `enabled`: the settings
    (`OutputSettings`) under which it exists at all."""

    name: str
    msgtype: str
    doc: str
    build: Callable[[FrameStep, FrameResult], Any | None] | None = None
    optional: bool = False
    needs: tuple[str, ...] = ()
    enabled: Callable[[Any], bool] | None = None
    qos: QosSpec = OUTPUT_QOS

    @property
    def package(self) -> str:
        return self.msgtype.split("/")[0]

    def exists(self, settings: OutputSettings, depth: bool) -> bool:
        """Whether a camera with these settings and depth (or not) has this output."""
        return ("depth" not in self.needs or depth) and (
            self.enabled is None or bool(self.enabled(settings)))


# ---- builders ------------------------------------------------------------------------------

def _points(step: FrameStep, frame: FrameResult) -> Any | None:
    if frame.cloud is None:
        return None
    return cloud_messages.pointcloud2_msg(step.builder, frame.cloud, frame.header)


def _markers(step: FrameStep, frame: FrameResult) -> Any | None:
    if frame.cloud is None:
        return None
    res = frame.result
    names = dict(zip(res.class_ids, res.class_names, strict=True))
    return cloud_messages.markers_msg(step.builder, frame.points_3d or {}, names, frame.header)


def _labels(step: FrameStep, frame: FrameResult) -> Any:
    res = frame.result
    fields = encode_labels(res.labels, max_id=max(res.class_ids, default=0))
    return messages.image_msg(step.builder, fields, frame.header)


def _confidence(step: FrameStep, frame: FrameResult) -> Any:
    return messages.image_msg(step.builder, encode_float(frame.result.confidence), frame.header)


def _confidence_mono8(step: FrameStep, frame: FrameResult) -> Any:
    mono = messages.confidence_mono8(frame.result.confidence)
    return messages.image_msg(step.builder, encode_mono8(mono), frame.header)


def _overlay(step: FrameStep, frame: FrameResult) -> Any:
    return messages.image_msg(step.builder, encode_rgb(frame.overlay()), frame.header)


def _features(step: FrameStep, frame: FrameResult) -> Any | None:
    feats = frame.result.features
    if feats is None or step.feature_space is None:
        return None
    return messages.feature_map_msg(step.builder, feats, frame.header, step.feature_space,
                                    step.logit_scale)


def _feature_image(step: FrameStep, frame: FrameResult) -> Any | None:
    """With objects on, the segments are the instances (ids as in ~/instances and
    ~/detections); else each class's connected regions."""
    if frame.result.features is None:
        return None
    found = frame.objects.found if frame.objects is not None else None
    if found is not None:
        return object_messages.instance_feature_image_msg(
            step.builder, found.instances, frame.objects.vectors, frame.header)
    return messages.feature_image_msg(step.builder, frame.result, frame.header)


def _found(frame: FrameResult) -> Any | None:
    return frame.objects.found if frame.objects is not None else None


def _instances(step: FrameStep, frame: FrameResult) -> Any | None:
    if (found := _found(frame)) is None:
        return None
    return object_messages.instances_image_msg(step.builder, found.instances, frame.header)


def _detections(step: FrameStep, frame: FrameResult) -> Any | None:
    if (found := _found(frame)) is None:
        return None
    return object_messages.detections_2d_msg(step.builder, found.instances, found.track_ids,
                                             frame.header)


def _detections_3d(step: FrameStep, frame: FrameResult) -> Any | None:
    if (found := _found(frame)) is None or (boxes := frame.objects.boxes) is None:
        return None
    return object_messages.detections_3d_msg(step.builder, found.instances, found.track_ids,
                                             boxes, frame.header)


def _detection_markers(step: FrameStep, frame: FrameResult) -> Any | None:
    if (found := _found(frame)) is None or (boxes := frame.objects.boxes) is None:
        return None
    return object_messages.box_markers_msg(step.builder, found.instances, found.track_ids,
                                           boxes, frame.header)


def _hydra_instances(step: FrameStep, frame: FrameResult) -> Any | None:
    if (found := _found(frame)) is None:
        return None
    return object_messages.hydra_image_msg(step.builder, frame.result.labels, found.instances,
                                           frame.header)


def _segmentation(step: FrameStep, frame: FrameResult) -> Any:
    inference_ms, latency_ms, dropped = frame.timing
    return messages.segmentation_msg(step.builder, frame.result, frame.header, inference_ms,
                                     latency_ms, dropped, frame.points_3d)


# ---- the table -----------------------------------------------------------------------------

# A frame's outputs in the order they are emitted. The segmentation comes last: `ovseg bag
# --resume` takes a frame whose segmentation was written as complete.
FRAME_TABLE: tuple[Output, ...] = (
    Output("points", "sensor_msgs/msg/PointCloud2", "organized labelled cloud (x y z rgb "
           "label), pixel-aligned with the label image", _points, needs=("depth",)),
    Output("markers", "visualization_msgs/msg/MarkerArray", "one text per class at its "
           "median 3D point", _markers, needs=("depth",)),
    Output("labels", IMAGE, "label ids, mono8 (mono16 above 255); 0 = background or no "
           "class", _labels),
    Output("confidence", IMAGE, "probability of each pixel's label, 32FC1", _confidence),
    Output("confidence_mono8", IMAGE, "the confidence as mono8 0-255 (Nav2's "
           "confidence_topic)", _confidence_mono8,
           enabled=lambda s: s.node.publish_confidence_mono8 or s.node.use_depth),
    Output("overlay", IMAGE, "rgb8 colour blend with a legend, for RViz", _overlay,
           optional=True),
    Output("features", "ovseg_ros/msg/FeatureMap", "refined dense CLIP features per patch, "
           "float16", _features, optional=True, needs=("features",)),
    Output("feature_image", "semantic_inference_msgs/msg/FeatureImage", "one CLIP vector per "
           "labelled region (per object with objects on), for Khronos/Clio/Hydra",
           _feature_image, optional=True, needs=("features",)),
    Output("instances", IMAGE, "16UC1 object ids: k = the k-th detection of the frame's "
           "~/detections, 0 = none", _instances, enabled=lambda s: s.objects.objects),
    Output("detections", "vision_msgs/msg/Detection2DArray", "one per object: pixel box, "
           "class name and score, track id", _detections, enabled=lambda s: s.objects.objects),
    Output("detections_3d", "vision_msgs/msg/Detection3DArray", "one per object with enough "
           "depth: box in the camera's optical frame, class name, track id", _detections_3d,
           needs=("depth",), enabled=lambda s: s.objects.objects),
    Output("detection_markers", "visualization_msgs/msg/MarkerArray", "a box and a "
           "\"name #id 1.8 m\" text per 3D detection, for RViz", _detection_markers,
           needs=("depth",), enabled=lambda s: s.objects.objects),
    Output("hydra_instances", IMAGE, "32SC1: class id in the low 16 bits, object index in the "
           "high 16, as Hydra's InstanceImageReceiver decodes it", _hydra_instances,
           enabled=lambda s: s.objects.objects and s.objects.hydra_instances),
    Output("segmentation", "ovseg_ros/msg/Segmentation", "per-class statistics, timing and "
           "the label map version", _segmentation),
)

# One per node (camera ""): built by the step's announcements, not per frame.
VOCABULARY_TABLE: tuple[Output, ...] = (
    Output("label_map", "ovseg_ros/msg/LabelMap", "id -> name -> colour, latched",
           qos=LATCHED_QOS),
    Output("label_info", "vision_msgs/msg/LabelInfo", "id -> name (vision_msgs), latched",
           qos=LATCHED_QOS),
)

BY_NAME = {o.name: o for o in FRAME_TABLE + VOCABULARY_TABLE}
FRAME_OUTPUTS = tuple(o.name for o in FRAME_TABLE)
VOCABULARY_OUTPUTS = tuple(o.name for o in VOCABULARY_TABLE)
OPTIONAL_OUTPUTS = tuple(o.name for o in FRAME_TABLE if o.optional)


def frame_outputs(settings: OutputSettings, depth: bool, asked: Iterable[str] | None = None
                  ) -> list[Output]:
    """The frame outputs a camera has: those that exist with these settings and depth; with
    `asked` (a bag's choice), the optional ones only when named there."""
    chosen = None if asked is None else set(asked)
    return [o for o in FRAME_TABLE if o.exists(settings, depth)
            and (chosen is None or not o.optional or o.name in chosen)]


def qos_for(output: str) -> QosSpec:
    return BY_NAME[output].qos
