"""One camera's input and outputs, and the rule for foreign clocks. rclpy types only; no node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.publisher import Publisher
from std_msgs.msg import Header

from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.geometry import ClassPoint, SemanticCloud
from ovseg_ros.io import encode_float, encode_labels, encode_mono8, encode_rgb
from ovseg_ros.node import messages as m
from ovseg_ros.node.cloud_messages import markers_msg, pointcloud2_msg
from ovseg_ros.node.depth_input import DepthInput
from ovseg_ros.node.diagnostics import HealthMonitor
from ovseg_ros.node.features import FeatureOutputs
from ovseg_ros.viz import overlay as overlay_image

# A stamp more than this behind the node's clock (or ahead of it) comes from another clock: a
# bag replayed without sim time, a camera's own clock, stamps that went backwards. Latency is
# then measured from the frame's arrival instead of its stamp.
MAX_STAMP_AGE_S = 60.0


def latency_s(now: float, stamp: float, since_arrival: float) -> float:
    """now - stamp on one clock; `since_arrival` for an unstamped frame or a foreign clock."""
    age = now - stamp
    return age if stamp > 0 and 0.0 <= age <= MAX_STAMP_AGE_S else since_arrival


@dataclass
class Camera:
    """One input and its outputs. name "" is the single default input (outputs under ~/)."""

    name: str
    input_topic: str
    health: HealthMonitor
    labels: Publisher  # lifecycle publishers: they publish only while the node is active
    confidence: Publisher
    confidence_mono8: Publisher | None
    overlay: Publisher
    segmentation: Publisher
    points: Publisher | None = None  # use_depth: ~/points, ~/markers
    markers: Publisher | None = None
    depth: DepthInput | None = None
    qos_desc: str = ""  # the input's QoS, chosen at activation (inputs.InputSubscriptions)
    extras: FeatureOutputs | None = None  # ~/features, ~/feature_image, the ~/query slot

    @property
    def publishers(self) -> list[Publisher]:
        return [p for p in (self.labels, self.confidence, self.confidence_mono8, self.overlay,
                            self.segmentation, self.points, self.markers) if p is not None] + (
            self.extras.publishers if self.extras is not None else [])

    def publish(self, result: SegmentationResult, header: Header, rgb: np.ndarray,
                overlay_alpha: float, inference_ms: float, latency_ms: float,
                dropped: int, cloud: SemanticCloud | None = None,
                points_3d: dict[int, ClassPoint] | None = None) -> None:
        """Every output of one frame, with the input's header: the label image, confidence
        and cloud of a frame carry the identical stamp (Nav2's layer joins them by time)."""
        watched = self.overlay.get_subscription_count() > 0  # the blend costs: only when watched
        msgs = frame_messages(
            result, header, rgb, overlay_alpha, inference_ms, latency_ms, dropped, cloud,
            points_3d, confidence_mono8=self.confidence_mono8 is not None, overlay=watched,
            markers=self.markers is not None and self.markers.get_subscription_count() > 0)
        for output, msg in msgs:
            getattr(self, output).publish(msg)
        if watched:
            self.health.overlay_computed()
        self.health.frame_done(latency_ms, inference_ms)
        if self.extras is not None:
            self.extras.on_frame(result, header, cloud)


# The outputs of one camera, in the order `frame_messages` builds them; the attribute names of
# `Camera` and the topic names under the node's namespace (`ovseg bag` writes the same).
OUTPUTS = ("points", "markers", "labels", "confidence", "confidence_mono8", "overlay",
           "segmentation")


def frame_messages(result: SegmentationResult, header: Header, rgb: np.ndarray,
                   overlay_alpha: float, inference_ms: float, latency_ms: float, dropped: int,
                   cloud: SemanticCloud | None, points_3d: dict[int, ClassPoint] | None, *,
                   confidence_mono8: bool, overlay: bool, markers: bool) -> list[tuple[str, Any]]:
    """(output name, message) for every output of one frame, in publishing order: the one
    place the node (`Camera.publish`) and `ovseg bag` build a frame's messages. The points and
    markers come only with a cloud; the flags switch the optional outputs on."""
    out: list[tuple[str, Any]] = []
    if cloud is not None:
        out.append(("points", pointcloud2_msg(cloud, header)))
        if markers:
            names = dict(zip(result.class_ids, result.class_names, strict=True))
            out.append(("markers", markers_msg(points_3d, names, header)))
    max_id = max(result.class_ids, default=0)
    out.append(("labels", m.image_msg(encode_labels(result.labels, max_id=max_id), header)))
    out.append(("confidence", m.image_msg(encode_float(result.confidence), header)))
    if confidence_mono8:
        fields = encode_mono8(m.confidence_mono8(result.confidence))
        out.append(("confidence_mono8", m.image_msg(fields, header)))
    if overlay:
        img = overlay_image(rgb, result.labels, overlay_alpha, m.legend_for(result))
        out.append(("overlay", m.image_msg(encode_rgb(img), header)))
    out.append(("segmentation", m.segmentation_msg(result, header, inference_ms, latency_ms,
                                                   dropped, points_3d)))
    return out
