"""Input QoS selection: sensor data, reliable, or matched to the publishers already there."""

from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

from ovseg_ros.frame.outputs import LATCHED_QOS, OUTPUT_QOS, QosSpec

NO_PUBLISHER = "no publisher at start-up"  # how `matched` says it fell back


def describe(qos: QoSProfile) -> str:
    return (f"{qos.reliability.name.lower()}/{qos.durability.name.lower()} "
            f"depth {qos.depth}")


def sensor_data(depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def reliable(depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def matched(node: Node, topic: str, depth: int, wait_s: float = 0.5) -> tuple[QoSProfile, str]:
    """QoS compatible with, and as strong as, every publisher on `topic` (resolved name).

    Reliable only if every publisher is reliable (a reliable subscription ignores best-effort
    publishers); transient local only if every publisher offers it. With no publisher yet
    (after waiting `wait_s` for discovery) fall back to sensor data, which accepts any.
    """
    deadline = time.monotonic() + wait_s
    infos = node.get_publishers_info_by_topic(topic)
    while not infos and time.monotonic() < deadline:
        time.sleep(0.05)
        infos = node.get_publishers_info_by_topic(topic)
    if not infos:
        return sensor_data(depth), f"{NO_PUBLISHER}: sensor data"
    profiles = [i.qos_profile for i in infos]
    rel = (ReliabilityPolicy.RELIABLE
           if all(p.reliability == ReliabilityPolicy.RELIABLE for p in profiles)
           else ReliabilityPolicy.BEST_EFFORT)
    dur = (DurabilityPolicy.TRANSIENT_LOCAL
           if all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in profiles)
           else DurabilityPolicy.VOLATILE)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=rel,
                     durability=dur)
    return qos, f"matched {len(infos)} publisher(s)"


def input_qos(node: Node, mode: str, topic: str, depth: int) -> tuple[QoSProfile, str]:
    """(profile, human-readable description) for the `qos` parameter value."""
    if mode == "reliable":
        qos, how = reliable(depth), "reliable"
    elif mode == "sensor_data":
        qos, how = sensor_data(depth), "sensor data"
    else:
        qos, how = matched(node, topic, depth)
    return qos, f"{describe(qos)} ({how})"


def profile(spec: QosSpec) -> QoSProfile:
    """The rclpy profile of an output's QoS (frame.outputs)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=spec.depth,
                      reliability=ReliabilityPolicy.RELIABLE if spec.reliable
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if spec.transient_local
                      else DurabilityPolicy.VOLATILE)


def latched() -> QoSProfile:
    """For ~/label_map and ~/label_info: late subscribers get the current vocabulary."""
    return profile(LATCHED_QOS)


def outputs() -> QoSProfile:
    """Output images: reliable publishers match both reliable and best-effort subscribers."""
    return profile(OUTPUT_QOS)
