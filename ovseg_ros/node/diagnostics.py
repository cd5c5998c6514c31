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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ovseg_ros.frame.log import Throttle, one_line

OK, WARN, ERROR, STALE = 0, 1, 2, 3
__all__ = ["ERROR", "OK", "STALE", "WARN", "HealthMonitor", "Report", "Throttle",
           "diagnostic_array", "lifecycle_report", "node_status", "one_line", "window_rate"]


@dataclass
class Report:
    level: int
    message: str
    values: list[tuple[str, str]] = field(default_factory=list)


# Rates and latency are computed over the last RATE_FRAMES frames, whatever the period of the
# diagnostics: at 0.14 Hz a 1 s period would see no frame in 6 of 7 reports.
RATE_FRAMES = 20


def window_rate(times: Sequence[float], now: float) -> float | None:
    """Events per second over `times` (increasing, the newest last), None with fewer than 2.

    Once the gap since the newest event exceeds the window's mean interval, the rate is taken
    up to `now`, so it falls towards 0 when events stop instead of staying at its last value.
    """
    n = len(times)
    if n < 2:
        return None
    span = times[-1] - times[0]
    if now - times[-1] > span / (n - 1):
        span = now - times[0]
    return (n - 1) / max(span, 1e-9)


class HealthMonitor:
    """Thread-safe counters and the rules that turn them into a diagnostic level."""

    def __init__(self, no_input_warn_s: Callable[[], float], topic: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # a getter: the setting is dynamic and read where it acts, at every report
        self.no_input_warn_s = no_input_warn_s
        self.topic = topic
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._last_input: float | None = None
        self.received = self.rejected = self.succeeded = self.failed = self.overlays = 0
        self.objects_last = -1  # objects in the last frame that made them (-1: none yet)
        self.objects_without_depth = 0  # objects left out of ~/detections_3d: too few points
        self._last_reject = ""
        self._error: str | None = None  # set by a failed frame, cleared by the next success
        self._arrivals: deque[float] = deque(maxlen=RATE_FRAMES)
        self._outputs: deque[tuple[float, float, float]] = deque(maxlen=RATE_FRAMES)
        self._prev = (0, 0)  # (succeeded, rejected) at the last report
        self.qos_event = ""  # last incompatible-QoS event text, if any
        # When the current publishers appeared: a camera process takes seconds from creating
        # its publisher to sending a frame, which is not a QoS mismatch.
        self._publishers_since: float | None = None

    def frame_received(self) -> None:
        with self._lock:
            self.received += 1
            self._last_input = self._clock()
            self._arrivals.append(self._last_input)

    def frame_rejected(self, reason: str) -> None:
        with self._lock:
            self.rejected += 1
            self._last_reject = reason

    def frame_done(self, latency_ms: float, inference_ms: float) -> None:
        with self._lock:
            self.succeeded += 1
            self._error = None
            self._outputs.append((self._clock(), latency_ms, inference_ms))

    def frame_failed(self, message: str) -> None:
        with self._lock:
            self.failed += 1
            self._error = message

    def overlay_computed(self) -> None:
        with self._lock:
            self.overlays += 1

    def objects_found(self, count: int, without_depth: int) -> None:
        with self._lock:
            self.objects_last = count
            self.objects_without_depth += without_depth

    def seconds_without_input(self) -> float:
        with self._lock:
            since = self._last_input if self._last_input is not None else self._start
            return self._clock() - since

    def report(self, publishers: int, dropped: int, qos_desc: str = "") -> Report:
        """Level, message and key values now.

        publishers: publishers currently matched on the input topic (for the QoS hint);
        dropped: frames replaced in the worker's slot; qos_desc: our input QoS.
        """
        idle = self.seconds_without_input()
        warn_s = self.no_input_warn_s()
        with self._lock:
            now = self._clock()
            ok0, rej0 = self._prev
            ok, rej = self.succeeded - ok0, self.rejected - rej0  # since the last report
            self._prev = (self.succeeded, self.rejected)
            arrivals, outputs = list(self._arrivals), list(self._outputs)
            error, last_reject = self._error, self._last_reject
            counters = (self.received, self.succeeded, self.rejected, self.failed, self.overlays)
            objects = (self.objects_last, self.objects_without_depth)
            if publishers == 0:
                self._publishers_since = None
            elif self._publishers_since is None:
                self._publishers_since = now
            since = self._publishers_since
        silent_with_publisher = 0.0 if since is None else min(idle, now - since)
        in_rate = window_rate(arrivals, now)
        out_rate = window_rate([t for t, _, _ in outputs], now)

        if error is not None:
            level, msg = ERROR, f"processing failed: {error}"
        elif silent_with_publisher >= warn_s:
            level = WARN
            msg = (f"{publishers} publisher(s) on {self.topic} but no frames for "
                   f"{silent_with_publisher:.0f} s: QoS mismatch? (ours: {qos_desc or 'unknown'}"
                   + (f"; {self.qos_event}" if self.qos_event else "") + ")")
        elif idle >= warn_s and publishers > 0:
            level, msg = WARN, (f"no input on {self.topic} for {idle:.0f} s (a publisher "
                                "appeared; waiting for its first frame)")
        elif idle >= warn_s:
            level, msg = WARN, f"no input on {self.topic} for {idle:.0f} s (no publisher)"
        elif rej > 0 and ok == 0:
            level, msg = WARN, f"all {rej} frames since the last report rejected: {last_reject}"
        elif out_rate is not None:
            level, msg = OK, f"segmenting at {out_rate:.2f} Hz"
        else:
            level, msg = OK, ("first frame segmented" if outputs else "waiting for frames")

        def fmt(x: float | None, digits: int = 1) -> str:
            return "n/a" if x is None else f"{x:.{digits}f}"

        lat = [x for _, x, _ in outputs]
        received, succeeded, rejected, failed, overlays = counters
        values = [
            ("input_rate_hz", fmt(in_rate, 2)),
            ("output_rate_hz", fmt(out_rate, 2)),
            ("latency_ms_last", fmt(lat[-1] if lat else None)),
            ("latency_ms_mean", fmt(sum(lat) / len(lat) if lat else None)),
            ("latency_ms_max", fmt(max(lat) if lat else None)),
            ("inference_ms_last", fmt(outputs[-1][2] if outputs else None)),
            ("rate_window_frames", str(RATE_FRAMES)),
            ("frames_received", str(received)),
            ("frames_processed", str(succeeded)),
            ("frames_dropped", str(dropped)),
            ("frames_rejected", str(rejected)),
            ("frames_failed", str(failed)),
            ("overlays_computed", str(overlays)),
            *((("objects_last_frame", str(objects[0])),
               ("objects_without_depth", str(objects[1]))) if objects[0] >= 0 else ()),
            ("seconds_since_input", f"{idle:.1f}"),
            ("input_topic", self.topic),
            ("input_publishers", str(publishers)),
            ("input_qos", qos_desc),
        ]
        return Report(level, msg, values)


def node_status(pipeline: Any, state: str, vocabulary_size: int, version: int,
                frames_out_of_memory: int) -> list[tuple[str, str]]:
    """Key/values shared by every camera's status: state, model, device, vocabulary, keyframes."""
    cfg, rt = pipeline.segmenter.config, pipeline.segmenter.runtime
    extra = [("lifecycle_state", state), ("model", cfg.model),
             ("clip_weights", cfg.clip_weights), ("device", str(rt.device)),
             ("precision", rt.precision), ("backend", rt.backend),
             ("compute_choice", rt.reason or "the settings"), ("mode", cfg.mode),
             ("text_precision", _text_choice(pipeline.segmenter)),
             ("vocabulary_size", str(vocabulary_size)), ("vocabulary_version", str(version)),
             ("frames_out_of_memory", str(frames_out_of_memory))]
    if pipeline.config.enabled:
        extra += [("keyframes_started", str(pipeline.keyframes_started)),
                  ("keyframes_fused", str(pipeline.keyframes_fused)),
                  ("keyframe_errors", str(pipeline.keyframe_errors)),
                  ("last_keyframe_error", pipeline.last_keyframe_error or "")]
    return extra


def _text_choice(segmenter: Any) -> str:
    choice = getattr(segmenter, "text_choice", None)
    return choice.describe() if choice is not None else ""


def lifecycle_report(state: str, last_error: str | None) -> Report:
    """The one status of a node that has no model loaded (unconfigured, or in a transition)."""
    if last_error:
        return Report(ERROR, f"{state}: configure failed: {last_error}",
                      [("lifecycle_state", state)])
    waiting = " (waiting for configure)" if state == "unconfigured" else ""
    return Report(OK, f"{state}{waiting}", [("lifecycle_state", state)])


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
