"""What the node publishes and `ovseg bag` writes, named once: the outputs of a frame and of a
vocabulary, their message types and the QoS their publishers offer (plain data: the node
turns it into rclpy profiles, the bag into rosbags' QoS records)."""

from __future__ import annotations

from dataclasses import dataclass

# Every per-camera output, in the order a frame's outputs are emitted (the segmentation last:
# `ovseg bag --resume` takes a frame with a segmentation as complete).
FRAME_OUTPUTS = ("points", "markers", "labels", "confidence", "confidence_mono8", "overlay",
                 "features", "feature_image", "segmentation")
VOCABULARY_OUTPUTS = ("label_map", "label_info")  # one per node (camera "")

IMAGE = "sensor_msgs/msg/Image"
OUTPUT_TYPES = {"points": "sensor_msgs/msg/PointCloud2",
                "markers": "visualization_msgs/msg/MarkerArray",
                "labels": IMAGE, "confidence": IMAGE, "confidence_mono8": IMAGE,
                "overlay": IMAGE, "features": "ovseg_ros/msg/FeatureMap",
                "feature_image": "semantic_inference_msgs/msg/FeatureImage",
                "segmentation": "ovseg_ros/msg/Segmentation",
                "label_map": "ovseg_ros/msg/LabelMap", "label_info": "vision_msgs/msg/LabelInfo"}


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


def qos_for(output: str) -> QosSpec:
    return LATCHED_QOS if output in VOCABULARY_OUTPUTS else OUTPUT_QOS
