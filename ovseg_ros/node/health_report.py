"""The node's /diagnostics array while configured: one status per camera (a dead camera shows
even while the others work), each with the node's own values; WARNs are logged, once per kind
per 5 s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray

from ovseg_ros.frame.log import Throttle, kind_of
from ovseg_ros.node.camera import Camera
from ovseg_ros.node.diagnostics import OK, WARN, Report, diagnostic_array


def camera_statuses(cameras: list[Camera], base: str, state: str, hardware: str,
                    extra: list[tuple[str, str]], publishers_of: Callable[[str], int],
                    dropped_of: Callable[[str], int], log: Any, throttle: Throttle,
                    stamp: Any) -> DiagnosticArray:
    """`base` names the node's status ("<node>: segmentation"); `publishers_of(topic)` and
    `dropped_of(camera)` count what the node sees now."""
    statuses = []
    for cam in cameras:
        if state == "active":
            report = cam.health.report(publishers_of(cam.input_topic), dropped_of(cam.name),
                                       cam.qos_desc)
        else:
            report = Report(OK, f"{state}: model loaded, not subscribed (activate to segment)")
        if cam.depth is not None:
            report.values += cam.depth.values()
            if state == "active" and report.level == OK and cam.depth.last_problem:
                report.level = WARN
                report.message += f"; no point cloud: {cam.depth.last_problem}"
        # One line per kind of problem, not per second (digits stripped).
        if report.level == WARN and throttle.ready(f"diag:{kind_of(report.message, 40)}"):
            log.warning(report.message)
        name = f"{base} {cam.name}" if cam.name else base
        statuses += diagnostic_array(report, name, hardware, extra, stamp).status
    arr = DiagnosticArray(status=statuses)
    arr.header.stamp = stamp
    return arr
