"""The node's one frame path: what the worker does with the messages it takes at once.

Each message is decoded once, into a `Frame` (camera, message, arrival time, stamp, RGB); all
frames of a take (at most one per camera) are segmented by one `FramePipeline.process_batch`
call, whether there is one camera or several; each result is published on its camera's topics.
Listeners (`SegmentNode.frame_listeners`) get a `FrameReport` per published frame with the time of
each stage: the benchmark reads the node's timings there.

Runs on the worker thread only; rclpy message types, no node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from ovseg_ros.core import device as D
from ovseg_ros.core.pipeline import FramePipeline
from ovseg_ros.geometry import PairRequest
from ovseg_ros.io import ImageDecodeError, decode_compressed, decode_image
from ovseg_ros.node import camera as C
from ovseg_ros.node import messages as m
from ovseg_ros.node.config import NodeConfig
from ovseg_ros.node.diagnostics import Throttle, one_line


def decode_rgb(msg: Image | CompressedImage, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image or CompressedImage message (ImageDecodeError when it
    cannot be decoded or exceeds max_pixels): the node's and `ovseg bag`'s one decode."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.format, msg.data, max_pixels)
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                        msg.data, max_pixels)


class Incoming(NamedTuple):
    """What a subscription callback hands to the worker: no decoding on executor threads."""

    msg: Image | CompressedImage
    received: float  # time.monotonic() at arrival
    pair: PairRequest | None = None  # use_depth: the search for this frame's depth


@dataclass
class Frame:
    """One decoded input frame, built once at decode."""

    camera: C.Camera
    msg: Image | CompressedImage
    received: float  # monotonic arrival time
    stamp: float  # header stamp in seconds
    rgb: np.ndarray  # (H, W, 3) uint8
    decode_s: float
    pair: PairRequest | None = None


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


class FrameProcessor:
    """The worker's handler for one activation of the node."""

    def __init__(self, pipeline: FramePipeline, cameras: list[C.Camera],
                 settings: Callable[[], NodeConfig], now: Callable[[], float],
                 dropped: Callable[[str], int], logger: Any, throttle: Throttle,
                 listeners: list[Callable[[FrameReport], None]],
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.pipeline = pipeline
        self.cameras = {c.name: c for c in cameras}
        self.primary = cameras[0].name  # keyframes follow the first camera
        self.settings = settings  # the node's current NodeConfig (dynamic values)
        self.now = now  # node clock, seconds
        self.dropped = dropped
        self.log = logger
        self.throttle = throttle
        self.listeners = listeners  # the node's list: shared by every activation
        self.frames_out_of_memory = 0
        self.retired = False  # set once its publishers may be gone: publish nothing more
        self.alive = alive  # False once the ROS context is shut down (a signal): publish nothing

    def __call__(self, batch: list[tuple[str, Incoming]]) -> None:
        frames = [f for name, item in batch if (f := self.decode(self.cameras[name], item))]
        if not frames:
            return
        primary = next((i for i, f in enumerate(frames) if f.camera.name == self.primary), None)
        t0 = time.perf_counter()
        results = self.infer(frames, primary)
        inference_s = time.perf_counter() - t0
        if results is None or self.retired or not self.alive():
            return
        alpha = self.settings().overlay_alpha
        for frame, result in zip(frames, results, strict=True):
            cam, t1 = frame.camera, time.perf_counter()
            cloud = points = None
            if cam.depth is not None and frame.pair is not None:
                cloud, points = cam.depth.cloud(frame.pair, result)
            t2 = time.perf_counter()
            cam.publish(result, m.copy_header(frame.msg.header), frame.rgb, alpha,
                        inference_s * 1e3, self.latency_ms(frame.stamp, frame.received),
                        self.dropped(cam.name), cloud, points)
            report = FrameReport(cam.name, frame.stamp, frame.decode_s, inference_s, t2 - t1,
                                 time.perf_counter() - t2, len(frames))
            for listener in self.listeners:
                listener(report)

    def latency_ms(self, stamp: float, received: float) -> float:
        """Stamp to now on the node's clock, or arrival to now (see camera.latency_s)."""
        return C.latency_s(self.now(), stamp, time.monotonic() - received) * 1e3

    def decode(self, cam: C.Camera, item: Incoming) -> Frame | None:
        """The frame, or None after counting and (throttled) logging why it was refused."""
        msg, limit = item.msg, self.settings().max_image_pixels
        t0 = time.perf_counter()
        try:
            rgb = decode_rgb(msg, limit)
        except ImageDecodeError as exc:
            cam.health.frame_rejected(str(exc))
            # One line per kind of problem per 5 s (digits stripped: sizes vary frame to frame).
            key = "".join(c for c in str(exc) if not c.isdigit())[:80]
            if self.throttle.ready(f"decode:{key}"):
                self.log.warning(f"dropping frame from {cam.input_topic}: {exc}")
            return None
        return Frame(cam, msg, item.received, m.stamp_seconds(msg.header.stamp), rgb,
                     time.perf_counter() - t0, item.pair)

    def infer(self, frames: list[Frame], primary: int | None) -> list[Any] | None:
        """Segment every frame in one call; None after an out-of-memory error, which drops the
        frames and is reported (any other exception goes to `on_error` via the worker)."""
        try:
            return self.pipeline.process_batch([(f.rgb, f.stamp) for f in frames], primary)
        except Exception as exc:
            if not D.is_out_of_memory(exc):
                raise
            text = one_line(exc)
        # Here the exception and its traceback (holding the frames' tensors) are gone, so the
        # freed blocks can actually go back to the device.
        D.free_device_memory(self.pipeline.segmenter.runtime.device)
        self.frames_out_of_memory += len(frames)
        for f in frames:
            h, w = f.rgb.shape[:2]
            f.camera.health.frame_failed(
                f"frame stamped {f.stamp:.3f} ({w}x{h}) dropped: out of memory")
        if self.throttle.ready("oom"):
            sizes = ", ".join(f"{f.rgb.shape[1]}x{f.rgb.shape[0]}" for f in frames)
            self.log.error(f"out of memory on {sizes}: frame dropped, device cache freed; lower "
                           f"input_size or max_image_pixels if this repeats ({text[:200]})")
        return None

    def on_error(self, batch: list[tuple[str, Incoming]], exc: BaseException) -> None:
        """The worker's error callback: the frames' cameras report it; one log line per kind
        of error per 5 s. Errors after the context went down (a frame that finished during
        shutdown) are not errors of the frame."""
        if self.retired or not self.alive():
            return
        for name, item in batch:
            stamp = m.stamp_seconds(item.msg.header.stamp)
            text = f"frame stamped {stamp:.3f}: {one_line(exc)}"
            self.cameras[name].health.frame_failed(text)
            if self.throttle.ready(f"error:{type(exc).__name__}"):
                self.log.error(f"processing failed on {text}")
