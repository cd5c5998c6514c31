"""The `ovseg` node: a thin rclpy layer over ovseg_ros.core.

Threads: the executor's callbacks only hand incoming messages to a one-slot buffer per camera
(no decoding); one worker thread decodes, runs FramePipeline.process (process_batch when
several cameras' slots are full) and publishes. Services, parameters and the diagnostics timer
sit in a reentrant callback group of a multi-threaded executor, so they answer while a frame is
being processed.

Run: `ros2 run ovseg_ros segment_node --ros-args -p prompts:="['cup','table']"` or
`python -m ovseg_ros.node.segment_node --ros-args ...`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_policy_name_from_kind
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from ovseg_ros.core import Segmenter
from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.io import ImageDecodeError, decode_compressed, decode_image
from ovseg_ros.msg import LabelMap, Segmentation
from ovseg_ros.node import camera as C
from ovseg_ros.node import messages as m
from ovseg_ros.node import params as P
from ovseg_ros.node import qos as Q
from ovseg_ros.node.build import build_pipeline
from ovseg_ros.node.diagnostics import (
    WARN,
    HealthMonitor,
    Throttle,
    diagnostic_array,
    node_status,
)
from ovseg_ros.node.runner import one_line, run_main
from ovseg_ros.node.worker import FrameWorker
from ovseg_ros.srv import GetPrompts, SetPrompts

try:  # optional: not every ROS install has vision_msgs
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

Item = tuple[Any, float, str]  # (Image or CompressedImage, monotonic receive time, camera)


class SegmentNode(Node):
    """Open-vocabulary segmentation of one camera stream, or of several (`cameras`)."""

    def __init__(self, node_name: str = "ovseg", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.values = P.declare(self)  # ValueError on invalid start-up values
        self._vocab_lock = threading.RLock()  # vocabulary change + label map + param sync
        self.pipeline = build_pipeline(self.values)
        self.segmenter: Segmenter = self.pipeline.segmenter
        try:
            self.pipeline.set_prompts(self.values["prompts"])
        except Exception:
            self.pipeline.close()
            raise
        log = self.get_logger()
        self._throttle = Throttle(5.0)
        self._compressed = self.values["input_transport"] == "compressed"
        self.frames_out_of_memory = 0
        self.still_running: list[str] = []  # filled by shutdown()
        self.cameras = [self._make_camera(n) for n in self.values["cameras"] or [""]]
        self._by_name = {c.name: c for c in self.cameras}
        first = self.cameras[0]  # single-camera names, kept for tools and tests
        self.input_topic, self.health = first.input_topic, first.health
        self.pub_labels, self.pub_conf, self.pub_conf8 = (first.labels, first.confidence,
                                                          first.confidence_mono8)
        self.pub_overlay, self.pub_seg = first.overlay, first.segmentation

        self._cb = ReentrantCallbackGroup()  # services, parameters, timer
        self.pub_label_map = self.create_publisher(LabelMap, "~/label_map", Q.latched())
        self.pub_label_info = None
        if LabelInfo is not None:
            self.pub_label_info = self.create_publisher(LabelInfo, "~/label_info", Q.latched())
        else:
            log.info("vision_msgs not importable: ~/label_info is not published")
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        self.create_service(SetPrompts, "~/set_prompts", self._srv_set_prompts,
                            callback_group=self._cb)
        self.create_service(GetPrompts, "~/get_prompts", self._srv_get_prompts,
                            callback_group=self._cb)
        self.create_service(Trigger, "~/keyframe", self._srv_keyframe, callback_group=self._cb)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        # One slot per camera; several full slots are segmented as one batch.
        self.worker: FrameWorker[Item] = FrameWorker(self._process_batch, self._on_worker_error,
                                                     batch=True)
        self.worker.start()
        for cam in self.cameras:
            self._subscribe(cam)
        self.input_qos, self.qos_desc = first.qos, first.qos_desc
        self.create_timer(self.values["diagnostics_period"], self._on_diagnostics,
                          callback_group=self._cb)
        self.publish_label_map()
        rt = self.segmenter.runtime
        inputs = ", ".join(f"{c.input_topic} [{c.qos_desc}]" for c in self.cameras)
        log.info(f"ready: {self.values['model']} on {rt.describe()}, input {inputs}, "
                 f"{len(self.values['prompts'])} prompts")

    def _make_camera(self, name: str) -> C.Camera:
        base = f"{name}/image" if name else "image"
        topic = self.resolve_topic_name(base + "/compressed" if self._compressed else base)
        out, prefix = Q.outputs(), f"~/{name}/" if name else "~/"
        conf8 = (self.create_publisher(Image, prefix + "confidence_mono8", out)
                 if self.values["publish_confidence_mono8"] else None)
        return C.Camera(name, topic, HealthMonitor(self.values["no_input_warn_s"], topic),
                      self.create_publisher(Image, prefix + "labels", out),
                      self.create_publisher(Image, prefix + "confidence", out), conf8,
                      self.create_publisher(Image, prefix + "overlay", out),
                      self.create_publisher(Segmentation, prefix + "segmentation", out))

    def _subscribe(self, cam: C.Camera) -> None:
        cam.qos, cam.qos_desc = Q.input_qos(self, self.values["qos"], cam.input_topic,
                                            self.values["qos_depth"])
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda info: self._on_incompatible_qos(info, cam))
        self.create_subscription(
            CompressedImage if self._compressed else Image, cam.input_topic,
            lambda msg: self._on_image(msg, cam.name), cam.qos,
            callback_group=MutuallyExclusiveCallbackGroup(), event_callbacks=events)

    # ---- input (executor threads: no decoding here) -------------------------------------------

    def _on_image(self, msg: Image | CompressedImage, camera: str = "") -> None:
        self._by_name[camera].health.frame_received()
        self.worker.submit((msg, time.monotonic(), camera), key=camera)

    def _on_incompatible_qos(self, info: Any, cam: C.Camera) -> None:
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        text = f"a publisher on {cam.input_topic} offers incompatible QoS ({policy})"
        cam.health.qos_event = text
        self.get_logger().warning(f"{text}; ours is {cam.qos_desc}; see the qos parameter")

    # ---- worker thread --------------------------------------------------------------------------

    def _decode(self, msg: Image | CompressedImage, cam: C.Camera | None = None):
        cam = cam or self.cameras[0]
        limit = self.values["max_image_pixels"]
        try:
            if self._compressed:
                return decode_compressed(msg.format, msg.data, limit)
            return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                                msg.data, limit)
        except ImageDecodeError as exc:
            cam.health.frame_rejected(str(exc))
            # One line per kind of problem per 5 s (digits stripped: sizes vary frame to frame).
            key = "".join(c for c in str(exc) if not c.isdigit())[:80]
            if self._throttle.ready(f"decode:{key}"):
                self.get_logger().warning(f"dropping frame from {cam.input_topic}: {exc}")
            return None

    def _decode_item(self, item: Item) -> np.ndarray | None:
        cam = self._by_name[item[2]]
        # The one-argument call for the single camera keeps subclasses that wrap _decode(msg)
        # (the node benchmark times it) working.
        return self._decode(item[0]) if cam is self.cameras[0] else self._decode(item[0], cam)

    def _process_batch(self, batch: list[tuple[str, Item]]) -> None:
        """Everything the worker took at once: at most one frame per camera."""
        if len(batch) == 1:
            self._process(batch[0][1])
            return
        frames = [(item, rgb) for _, item in batch if (rgb := self._decode_item(item)) is not None]
        if len(frames) <= 1:
            for item, _ in frames:
                self._process(item)
            return
        stamps = [m.stamp_seconds(item[0].header.stamp) for item, _ in frames]
        # Keyframes (and their prior) follow the first camera only; see process_batch.
        primary = next((i for i, (item, _) in enumerate(frames)
                        if item[2] == self.cameras[0].name), None)
        t0 = time.perf_counter()
        results = self._infer(lambda: self.pipeline.process_batch(
            [(rgb, stamp) for (_, rgb), stamp in zip(frames, stamps, strict=True)], primary),
            [item for item, _ in frames], [rgb for _, rgb in frames])
        if results is None or self.worker.stopping:
            return
        inference_ms = (time.perf_counter() - t0) * 1e3
        for (item, rgb), stamp, result in zip(frames, stamps, results, strict=True):
            self._publish(item, rgb, stamp, result, inference_ms)

    def _process(self, item: Item) -> None:
        rgb = self._decode_item(item)
        if rgb is None:
            return
        stamp = m.stamp_seconds(item[0].header.stamp)

        def run() -> SegmentationResult:
            if item[2] == self.cameras[0].name:
                return self.pipeline.process(rgb, stamp)
            return self.pipeline.process_batch([(rgb, stamp)], None)[0]  # keyframes: 1st only

        t0 = time.perf_counter()
        result = self._infer(run, [item], [rgb])
        if result is None or self.worker.stopping:
            return
        self._publish(item, rgb, stamp, result, (time.perf_counter() - t0) * 1e3)

    def _infer(self, run: Callable[[], Any], items: list[Item], images: list[np.ndarray]) -> Any:
        """run(); None after an out-of-memory error, which drops the frame(s) and is reported."""
        try:
            return run()
        except Exception as exc:
            if not C.is_out_of_memory(exc):
                raise
            text = one_line(exc)
        # Here the exception and its traceback (holding the frame's tensors) are gone, so the
        # freed blocks can actually go back to the device.
        C.free_device_memory(self.segmenter.runtime.device)
        self.frames_out_of_memory += len(items)
        for item, rgb in zip(items, images, strict=True):
            h, w = rgb.shape[:2]
            stamp = m.stamp_seconds(item[0].header.stamp)
            self._by_name[item[2]].health.frame_failed(
                f"frame stamped {stamp:.3f} ({w}x{h}) dropped: out of memory")
        if self._throttle.ready("oom"):
            sizes = ", ".join(f"{rgb.shape[1]}x{rgb.shape[0]}" for rgb in images)
            self.get_logger().error(
                f"out of memory on {sizes}: frame dropped, device cache freed; lower input_size "
                f"or max_image_pixels if this repeats ({text[:200]})")
        return None

    def latency_ms(self, stamp: float, received: float) -> float:
        """Stamp to now on the node's clock, or arrival to now (see camera.latency_s)."""
        now = self.get_clock().now().nanoseconds * 1e-9
        return C.latency_s(now, stamp, time.monotonic() - received) * 1e3

    def _publish(self, item: Item, rgb: np.ndarray, stamp: float, result: SegmentationResult,
                 inference_ms: float) -> None:
        msg, received, name = item
        self._by_name[name].publish(
            result, m.copy_header(msg.header), rgb, self.values["overlay_alpha"], inference_ms,
            self.latency_ms(stamp, received), self.worker.dropped(name))

    def _on_worker_error(self, batch: list[tuple[str, Item]], exc: BaseException) -> None:
        if self.worker.stopping:
            return  # publishers go away during shutdown
        for name, item in batch:
            stamp = m.stamp_seconds(item[0].header.stamp)
            text = f"frame stamped {stamp:.3f}: {type(exc).__name__}: {exc}"
            self._by_name[name].health.frame_failed(text)
            if self._throttle.ready(f"error:{type(exc).__name__}"):
                self.get_logger().error(f"processing failed on {text}")

    # ---- vocabulary -----------------------------------------------------------------------------

    def vocabulary(self) -> tuple[tuple[str, ...], tuple[int, ...], bool, int]:
        snap = self.segmenter.snapshot
        if snap is None:
            return (), (), bool(self.values["background"]), 0
        return snap.names, snap.ids, snap.background, snap.version

    def publish_label_map(self) -> None:
        names, ids, background, version = self.vocabulary()
        stamp = self.get_clock().now().to_msg()
        self.pub_label_map.publish(m.label_map_msg(names, ids, background, version, stamp))
        if self.pub_label_info is not None:
            self.pub_label_info.publish(m.label_info_msg(
                LabelInfo, VisionClass, names, ids, background, self.values["threshold"], stamp))

    def set_prompts(self, prompts: Sequence[str]) -> tuple[bool, str]:
        """Swap the vocabulary, republish the label map, mirror it into the `prompts` param."""
        with self._vocab_lock:
            try:
                self.pipeline.set_prompts(list(prompts))
            except Exception as exc:  # VocabularyError, or the text encoder failing
                return False, str(exc)
            self.publish_label_map()
            names = list(self.vocabulary()[0])
            # Re-enters _on_set_parameters, which sees an unchanged vocabulary and accepts.
            self.set_parameters([Parameter("prompts", Parameter.Type.STRING_ARRAY, names)])
            return True, ""

    def _srv_set_prompts(self, req: SetPrompts.Request, res: SetPrompts.Response):
        res.success, res.message = self.set_prompts(req.prompts)
        names, ids, _, _ = self.vocabulary()  # the previous vocabulary on refusal
        res.class_names, res.class_ids = list(names), list(ids)
        return res

    def _srv_get_prompts(self, req: GetPrompts.Request, res: GetPrompts.Response):
        names, ids, background, _ = self.vocabulary()
        res.class_names, res.class_ids, res.background = list(names), list(ids), background
        return res

    def _srv_keyframe(self, req: Trigger.Request, res: Trigger.Response):
        res.success = bool(self.pipeline.request_keyframe())
        res.message = ("keyframe requested for the next frame" if res.success else
                       "keyframes are disabled: start the node with keyframes:=true (or a "
                       "keyframe_every_n / keyframe_every_s schedule)")
        return res

    # ---- parameters -----------------------------------------------------------------------------

    def _on_set_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        ours = [p for p in changes if p.name in P.SPECS]
        problems = [r for p in ours if (r := P.validate(p.name, p.value)) is not None]
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        with self._vocab_lock:
            config = self.segmenter.config
            old_max = config.max_prompts
            limit = next((p for p in ours if p.name == "max_prompts"), None)
            if limit is not None:  # before prompts set in the same call, which it bounds
                config.max_prompts = limit.value
            prompts = next((p for p in ours if p.name == "prompts"), None)
            if prompts is not None and list(prompts.value) != list(self.vocabulary()[0]):
                try:
                    self.pipeline.set_prompts(list(prompts.value))
                except Exception as exc:
                    config.max_prompts = old_max
                    return SetParametersResult(successful=False, reason=str(exc))
            for p in ours:
                self.values[p.name] = list(p.value) if isinstance(p.value, list) else p.value
            names = {p.name for p in ours}
            if "threshold" in names:
                self._apply_threshold(self.values["threshold"])
            if "no_input_warn_s" in names:
                for cam in self.cameras:
                    cam.health.no_input_warn_s = self.values["no_input_warn_s"]
            if names & {"prompts", "threshold"}:
                self.publish_label_map()
        return SetParametersResult(successful=True)

    def _apply_threshold(self, value: float) -> None:
        setter = getattr(self.pipeline, "set_threshold", None)
        if setter is not None:
            setter(value)
        else:  # read by the segmenter on every frame
            self.segmenter.config.threshold = value

    # ---- health and shutdown --------------------------------------------------------------------

    def _on_diagnostics(self) -> None:
        """One status per camera: a dead camera shows up even while the others work."""
        names, _, _, version = self.vocabulary()
        rt = self.segmenter.runtime
        extra = node_status(self.values, rt, len(names), version, self.frames_out_of_memory,
                            self.pipeline)
        base = f"{self.get_fully_qualified_name().lstrip('/')}: segmentation"
        stamp, statuses = self.get_clock().now().to_msg(), []
        for cam in self.cameras:
            report = cam.health.report(self.count_publishers(cam.input_topic),
                                       self.worker.dropped(cam.name), cam.qos_desc)
            key = "".join(c for c in report.message if not c.isdigit())[:40]  # not per-second
            if report.level == WARN and self._throttle.ready(f"diag:{key}"):  # errors: logged
                self.get_logger().warning(report.message)
            name = f"{base} {cam.name}" if cam.name else base
            statuses += diagnostic_array(report, name, rt.describe(), extra, stamp).status
        arr = DiagnosticArray(status=statuses)
        arr.header.stamp = stamp
        self.pub_diag.publish(arr)

    def shutdown(self, timeout: float = 1.5) -> bool:
        """Stop the worker; False when a frame was still inside the model after `timeout`, or
        a vocabulary change (text encoding, on an executor thread) is still running; what is
        listed in `still_running`. Neither can be interrupted safely."""
        self.still_running = []
        if not self.worker.stop(timeout):
            self.still_running.append("a frame was still in inference")
        else:  # a running CLIP-DIY keyframe is a daemon thread: don't wait long for it
            self.pipeline.close(timeout=0.3)
        if self._vocab_lock.acquire(timeout=0.3):
            self._vocab_lock.release()
        else:
            self.still_running.append("a vocabulary change was still encoding text")
        return not self.still_running


def main(args: list[str] | None = None, fast_exit: bool = True) -> int:
    """Entry point; exit code 1 on a start-up failure (one error line), else 0. See run_main."""
    return run_main(SegmentNode, "ovseg", sys.argv if args is None else args, fast_exit=fast_exit)

if __name__ == "__main__":
    sys.exit(main())
