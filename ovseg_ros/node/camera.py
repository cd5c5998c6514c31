"""One camera's input and outputs, and the rule for foreign clocks. rclpy types only; no node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rclpy.publisher import Publisher

from ovseg_ros.frame.depth import DepthInput
from ovseg_ros.frame.step import FrameResult
from ovseg_ros.node.diagnostics import HealthMonitor
from ovseg_ros.node.features import FeatureOutputs

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
    # Lifecycle publishers by output name (frame/outputs.py): they publish only while the node
    # is active. An output without a publisher here does not exist for this camera.
    publishers: dict[str, Publisher] = field(default_factory=dict)
    depth: DepthInput | None = None
    qos_desc: str = ""  # the input's QoS, chosen at activation (inputs.InputSubscriptions)
    extras: FeatureOutputs | None = None  # the feature space and the slot ~/query reads

    def publisher(self, output: str) -> Any | None:
        """The publisher of one of the step's outputs, or None."""
        return self.publishers.get(output)

    def keep_latest(self, frame: FrameResult) -> None:
        """The frame ~/query answers from (a reference swap)."""
        if self.extras is not None:
            self.extras.keep(frame)
