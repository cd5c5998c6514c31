"""The node's side of the one frame step (frame/step.py): the sink that publishes a frame's
outputs on the node's topics, and the worker's handler.

Everything a frame produces comes from `FrameStep`, the same step `ovseg bag` and `ovseg
segment` run; here only where it goes: CDR bytes on lifecycle publishers (rclpy publishes
bytes as they are), each camera's health counters, the latest-frame slot ~/query answers from,
and a `FrameReport` per published frame for listeners (the benchmark reads the node's stage
times there). Runs on the worker thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ovseg_ros.frame.builder import MessageBuilder
from ovseg_ros.frame.log import FrameLog, kind_of, one_line
from ovseg_ros.frame.messages import stamp_seconds
from ovseg_ros.frame.outputs import BY_NAME
from ovseg_ros.frame.step import BaseSink, FrameResult, FrameStep, Incoming
from ovseg_ros.node.camera import Camera, latency_s

__all__ = ["FrameProcessor", "FrameReport", "Incoming", "LabelSink", "NodeSink"]


@dataclass(frozen=True)
class FrameReport:
    """Stage times of one published frame (seconds). inference_s is the batch's model time,
    shared by the frames segmented together; cloud_s this frame's depth decode + projection
    (0 without depth); publish_s its encodes + publishing."""

    camera: str
    stamp: float
    decode_s: float
    inference_s: float
    cloud_s: float
    publish_s: float
    batch_size: int


class NodeSink:
    """Publishes a step's outputs on the node's publishers (one activation of the node)."""

    def __init__(self, cameras: Sequence[Camera], vocabulary_publishers: dict[str, Any],
                 builder: MessageBuilder, now: Callable[[], float],
                 dropped: Callable[[str], int],
                 listeners: list[Callable[[FrameReport], None]],
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.cameras = {c.name: c for c in cameras}
        self.vocabulary_publishers = vocabulary_publishers  # label_map, label_info (latched)
        self.builder = builder
        self.now = now  # node clock, seconds
        self.dropped = dropped
        self.listeners = listeners  # the node's list: shared by every activation
        self.alive = alive  # False once the ROS context is shut down (a signal)
        self.retired = False  # set once its publishers may be gone: publish nothing more

    def _publisher(self, camera: str, output: str) -> Any | None:
        if not camera and output in self.vocabulary_publishers:
            return self.vocabulary_publishers[output]
        return self.cameras[camera].publisher(output)

    def wants(self, camera: str, output: str) -> bool:
        pub = self._publisher(camera, output)
        if pub is None:
            return False
        # The costly or rarely read outputs are built only while someone listens.
        if BY_NAME[output].optional:
            return pub.get_subscription_count() > 0
        return True

    def latency_ms(self, stamp: float, received: float) -> float:
        """Stamp to now on the node's clock, or arrival to now (see camera.latency_s)."""
        return latency_s(self.now(), stamp, time.monotonic() - received) * 1e3

    def timing(self, frame: FrameResult) -> tuple[float, float, int]:
        return (frame.inference_s * 1e3, self.latency_ms(frame.stamp, frame.incoming.received),
                self.dropped(frame.camera))

    def accepting(self) -> bool:
        return not self.retired and self.alive()

    def emit(self, camera: str, output: str, msg: Any, frame: FrameResult | None) -> None:
        pub = self._publisher(camera, output)
        if pub is not None:
            pub.publish(self.builder.serialize(msg))

    def frame_done(self, frame: FrameResult) -> None:
        cam = self.cameras[frame.camera]
        inference_ms, latency_ms, _ = frame.timing
        if frame.overlay_made:
            cam.health.overlay_computed()
        if frame.objects is not None and frame.objects.made and frame.objects.found is not None:
            boxes = frame.objects.boxes if cam.depth is not None else None
            cam.health.objects_found(len(frame.objects.found),
                                     len(boxes.too_few_points) if boxes is not None else 0)
        cam.health.frame_done(latency_ms, inference_ms)
        cam.keep_latest(frame)
        report = FrameReport(frame.camera, frame.stamp, frame.decode_s, frame.inference_s,
                             frame.cloud_s, frame.emit_s, frame.batch_size)
        for listener in self.listeners:
            listener(report)

    def frame_refused(self, camera: str, reason: str, text: str) -> None:
        health = self.cameras[camera].health
        if reason == "undecodable":
            health.frame_rejected(text)
        else:
            health.frame_failed(text)


class LabelSink(BaseSink):
    """The vocabulary's outputs alone (label map, LabelInfo), for announcements made outside
    a frame: at activation and when the vocabulary or the threshold changes."""

    def __init__(self, publishers: dict[str, Any], builder: MessageBuilder) -> None:
        self.publishers, self.builder = publishers, builder

    def wants(self, camera: str, output: str) -> bool:
        return output in self.publishers

    def emit(self, camera: str, output: str, msg: Any, frame: FrameResult | None) -> None:
        self.publishers[output].publish(self.builder.serialize(msg))


class FrameProcessor:
    """The worker's handler for one activation of the node: runs each take through the step."""

    def __init__(self, step: FrameStep, sink: NodeSink, log: FrameLog) -> None:
        self.step, self.sink, self.log = step, sink, log

    @property
    def frames_out_of_memory(self) -> int:
        return self.step.frames_out_of_memory

    def latency_ms(self, stamp: float, received: float) -> float:
        return self.sink.latency_ms(stamp, received)

    def retire(self) -> None:
        """Publish nothing more (the publishers may be going)."""
        self.sink.retired = True

    def __call__(self, batch: list[tuple[str, Incoming]]) -> None:
        self.step.run(batch, self.sink)

    def on_error(self, batch: list[tuple[str, Incoming]], exc: BaseException) -> None:
        """The worker's error callback: the frames' cameras report it; one log line per kind
        of error per 5 s. Errors after the context went down (a frame that finished during
        shutdown) are not errors of the frame."""
        if not self.sink.accepting():
            return
        for name, item in batch:
            text = f"frame stamped {stamp_seconds(item.msg.header.stamp):.3f}: {one_line(exc)}"
            self.sink.cameras[name].health.frame_failed(text)
            self.log.error(f"error:{kind_of(type(exc).__name__)}",
                           f"processing failed on {text}")
