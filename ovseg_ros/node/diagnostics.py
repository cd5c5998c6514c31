"""Health bookkeeping for the node (ROS-free) and its DiagnosticArray message.

`HealthMonitor` is fed by the subscription callback (frame received), the worker (frame done,
rejected or failed) and read by the diagnostics timer. Levels, by priority:

* ERROR after an exception while processing a frame, until a frame succeeds again;
* WARN when no frame arrived for `no_input_warn_s` (with a QoS-mismatch hint when publishers
  exist on the input topic, the most common "no output" cause), or when every frame of the
  last period was rejected by the decoder;
* OK otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass
class Report:
    level: int
    message: str
    values: list[tuple[str, str]] = field(default_factory=list)


class Throttle:
    """Per-key rate limit for log lines: `ready(key)` is True at most once per period."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def ready(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return False
            if len(self._last) > 1000:  # keys come from messages; never grow without bound
                self._last.clear()
            self._last[key] = now
            return True


class HealthMonitor:
    """Thread-safe counters and the rules that turn them into a diagnostic level."""

    def __init__(self, no_input_warn_s: float, topic: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.no_input_warn_s = no_input_warn_s
        self.topic = topic
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._last_input: float | None = None
        self.received = self.rejected = self.succeeded = self.failed = self.overlays = 0
        self._last_reject = ""
        self._error: str | None = None  # set by a failed frame, cleared by the next success
        self._latency_ms: list[float] = []  # since the last report
        self._inference_ms: list[float] = []
        self._prev = (clock(), 0, 0, 0)  # (time, received, succeeded, rejected) at last report
        self.qos_event = ""  # last incompatible-QoS event text, if any
        # When the current publishers appeared: a camera process takes seconds from creating
        # its publisher to sending a frame, which is not a QoS mismatch.
        self._publishers_since: float | None = None

    def frame_received(self) -> None:
        with self._lock:
            self.received += 1
            self._last_input = self._clock()

    def frame_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self._last_reject = reason

    def frame_done(self, latency_ms: float, inference_ms: float) -> None:
        with self._lock:
            self.succeeded += 1
            self._error = None
            self._latency_ms.append(latency_ms)
            self._inference_ms.append(inference_ms)

    def frame_failed(self, message: str) -> None:
        with self._lock:
            self.failed += 1
            self._error = message

    def overlay_computed(self) -> None:
        with self._lock:
            self.overlays += 1

    def seconds_without_input(self) -> float:
        with self._lock:
            since = self._last_input if self._last_input is not None else self._start
            return self._clock() - since

    def report(self, publishers: int, dropped: int, qos_desc: str = "") -> Report:
        """Level, message and key values for the period since the previous report.

        publishers: publishers currently matched on the input topic (for the QoS hint);
        dropped: frames replaced in the worker's slot since start; qos_desc: our input QoS.
        """
        idle = self.seconds_without_input()
        with self._lock:
            now = self._clock()
            t0, rec0, ok0, rej0 = self._prev
            dt = max(now - t0, 1e-6)
            rec, ok, rej = self.received - rec0, self.succeeded - ok0, self.rejected - rej0
            self._prev = (now, self.received, self.succeeded, self.rejected)
            lat, inf = self._latency_ms, self._inference_ms
            self._latency_ms, self._inference_ms = [], []
            error, last_reject = self._error, self._last_reject
            counters = (self.received, self.succeeded, self.rejected, self.failed, self.overlays)
            if publishers == 0:
                self._publishers_since = None
            elif self._publishers_since is None:
                self._publishers_since = now
            since = self._publishers_since
        silent_with_publisher = 0.0 if since is None else min(idle, now - since)

        if error is not None:
            level, msg = ERROR, f"processing failed: {error}"
        elif silent_with_publisher >= self.no_input_warn_s:
            level = WARN
            msg = (f"{publishers} publisher(s) on {self.topic} but no frames for "
                   f"{silent_with_publisher:.0f} s: QoS mismatch? (ours: {qos_desc or 'unknown'}"
                   + (f"; {self.qos_event}" if self.qos_event else "") + ")")
        elif idle >= self.no_input_warn_s and publishers > 0:
            level, msg = WARN, (f"no input on {self.topic} for {idle:.0f} s (a publisher "
                                "appeared; waiting for its first frame)")
        elif idle >= self.no_input_warn_s:
            level, msg = WARN, f"no input on {self.topic} for {idle:.0f} s (no publisher)"
        elif rej > 0 and ok == 0:
            level, msg = WARN, f"all {rej} frames of the last {dt:.1f} s rejected: {last_reject}"
        else:
            level, msg = OK, f"segmenting at {ok / dt:.1f} Hz"

        def mean(xs: list[float]) -> str:
            return f"{sum(xs) / len(xs):.1f}" if xs else "n/a"

        received, succeeded, rejected, failed, overlays = counters
        values = [
            ("input_rate_hz", f"{rec / dt:.2f}"),
            ("output_rate_hz", f"{ok / dt:.2f}"),
            ("latency_ms_mean", mean(lat)),
            ("latency_ms_max", f"{max(lat):.1f}" if lat else "n/a"),
            ("inference_ms_mean", mean(inf)),
            ("frames_received", str(received)),
            ("frames_processed", str(succeeded)),
            ("frames_dropped", str(dropped)),
            ("frames_rejected", str(rejected)),
            ("frames_failed", str(failed)),
            ("overlays_computed", str(overlays)),
            ("seconds_since_input", f"{idle:.1f}"),
            ("input_topic", self.topic),
            ("input_publishers", str(publishers)),
            ("input_qos", qos_desc),
        ]
        return Report(level, msg, values)



def node_status(values: dict[str, Any], runtime: Any, vocabulary_size: int, version: int,
                frames_out_of_memory: int, pipeline: Any) -> list[tuple[str, str]]:
    """Key/values shared by every camera's status: model, device, vocabulary, keyframes."""
    extra = [("model", values["model"]), ("clip_weights", values["clip_weights"]),
             ("device", str(runtime.device)), ("precision", runtime.precision),
             ("mode", values["mode"]), ("vocabulary_size", str(vocabulary_size)),
             ("vocabulary_version", str(version)),
             ("frames_out_of_memory", str(frames_out_of_memory))]
    if pipeline.config.enabled:
        extra += [("keyframes_started", str(pipeline.keyframes_started)),
                  ("keyframes_fused", str(pipeline.keyframes_fused)),
                  ("keyframe_errors", str(pipeline.keyframe_errors)),
                  ("last_keyframe_error", pipeline.last_keyframe_error or "")]
    return extra


def diagnostic_array(report: Report, name: str, hardware_id: str,
                     extra: list[tuple[str, str]], stamp):  # -> DiagnosticArray
    """Build the /diagnostics message for one report (imports diagnostic_msgs lazily)."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([report.level]), name=name, message=report.message,
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=k, value=v) for k, v in report.values + extra]
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [status]
    return arr
