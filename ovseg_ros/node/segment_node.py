"""The `ovseg` node: a thin rclpy layer over ovseg_ros.core.

Threads: the executor's callbacks only hand incoming messages to a one-slot buffer (no
decoding); one worker thread decodes, runs FramePipeline.process and publishes. Services,
parameters and the diagnostics timer sit in a reentrant callback group of a multi-threaded
executor, so they answer while a frame is being processed.

Run: `ros2 run ovseg_ros segment_node --ros-args -p prompts:="['cup','table']"` or
`python -m ovseg_ros.node.segment_node --ros-args ...`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_policy_name_from_kind
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.clipdiy import ClipDiyConfig
from ovseg_ros.core.pipeline import FramePipeline, KeyframeConfig
from ovseg_ros.io import (
    ImageDecodeError,
    decode_compressed,
    decode_image,
    encode_float,
    encode_labels,
    encode_mono8,
    encode_rgb,
)
from ovseg_ros.msg import LabelMap, Segmentation
from ovseg_ros.node import messages as m
from ovseg_ros.node import params as P
from ovseg_ros.node import qos as Q
from ovseg_ros.node.diagnostics import WARN, HealthMonitor, Throttle, diagnostic_array
from ovseg_ros.node.worker import FrameWorker
from ovseg_ros.srv import GetPrompts, SetPrompts
from ovseg_ros.viz import overlay

try:  # optional: not every ROS install has vision_msgs
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

Item = tuple[Any, float]  # (Image or CompressedImage, monotonic receive time)


def build_pipeline(values: dict[str, Any]) -> FramePipeline:
    """Segmenter and FramePipeline from parameter values (loads the weights)."""
    cfg = SegmenterConfig(
        model=values["model"], clip_weights=values["clip_weights"], heads=values["heads"],
        heads_sha256=values["heads_sha256"] or None, cache_dir=values["cache_dir"] or None,
        device=values["device"], precision=values["precision"], mode=values["mode"],
        input_size=values["input_size"], background=values["background"],
        threshold=values["threshold"])
    return FramePipeline(Segmenter(cfg), keyframe_config(values))


def keyframe_config(values: dict[str, Any]) -> KeyframeConfig:
    """Map the keyframe parameters onto the core's KeyframeConfig (asynchronous in the node)."""
    every_n, every_s = values["keyframe_every_n"], values["keyframe_every_s"]
    half_life = values["prior_half_life_frames"]
    return KeyframeConfig(
        enabled=bool(values["keyframes"] or every_n > 0 or every_s > 0),
        every_n_frames=every_n, every_s=every_s,
        on_prompt_change=values["keyframe_on_prompt_change"], asynchronous=True,
        fusion_weight=values["keyframe_fusion_weight"],
        prior=half_life > 0, prior_half_life=half_life or 1.0, prior_half_life_unit="frames",
        clip_diy=ClipDiyConfig(model=values["keyframe_model"],
                               weights=values["keyframe_weights"]))


class SegmentNode(Node):
    """Open-vocabulary segmentation of one camera stream."""

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
        compressed = self.values["input_transport"] == "compressed"
        self._compressed = compressed
        self.input_topic = self.resolve_topic_name("image/compressed" if compressed else "image")
        self.health = HealthMonitor(self.values["no_input_warn_s"], self.input_topic)

        self._cb = ReentrantCallbackGroup()  # services, parameters, timer
        out = Q.outputs()
        self.pub_labels = self.create_publisher(Image, "~/labels", out)
        self.pub_conf = self.create_publisher(Image, "~/confidence", out)
        self.pub_conf8 = (self.create_publisher(Image, "~/confidence_mono8", out)
                          if self.values["publish_confidence_mono8"] else None)
        self.pub_overlay = self.create_publisher(Image, "~/overlay", out)
        self.pub_seg = self.create_publisher(Segmentation, "~/segmentation", out)
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

        self.worker: FrameWorker[Item] = FrameWorker(self._process, self._on_worker_error)
        self.worker.start()
        self.input_qos, self.qos_desc = Q.input_qos(
            self, self.values["qos"], self.input_topic, self.values["qos_depth"])
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self.create_subscription(
            CompressedImage if compressed else Image, self.input_topic, self._on_image,
            self.input_qos, callback_group=MutuallyExclusiveCallbackGroup(),
            event_callbacks=events)
        self.create_timer(self.values["diagnostics_period"], self._on_diagnostics,
                          callback_group=self._cb)
        self.publish_label_map()
        rt = self.segmenter.runtime
        log.info(f"ready: {self.values['model']} on {rt.describe()}, input {self.input_topic} "
                 f"[{self.qos_desc}], {len(self.values['prompts'])} prompts")

    # ---- input (executor threads: no decoding here) -------------------------------------------

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.health.frame_received()
        self.worker.submit((msg, time.monotonic()))

    def _on_incompatible_qos(self, info: Any) -> None:
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        text = f"a publisher on {self.input_topic} offers incompatible QoS ({policy})"
        self.health.qos_event = text
        self.get_logger().warning(f"{text}; ours is {self.qos_desc}; see the qos parameter")

    # ---- worker thread --------------------------------------------------------------------------

    def _decode(self, msg: Image | CompressedImage):
        limit = self.values["max_image_pixels"]
        try:
            if self._compressed:
                return decode_compressed(msg.format, msg.data, limit)
            return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                                msg.data, limit)
        except ImageDecodeError as exc:
            self.health.frame_rejected(str(exc))
            # One line per kind of problem per 5 s (digits stripped: sizes vary frame to frame).
            key = "".join(c for c in str(exc) if not c.isdigit())[:80]
            if self._throttle.ready(f"decode:{key}"):
                self.get_logger().warning(f"dropping frame from {self.input_topic}: {exc}")
            return None

    def _process(self, item: Item) -> None:
        msg, received = item
        rgb = self._decode(msg)
        if rgb is None:
            return
        stamp = m.stamp_seconds(msg.header.stamp)
        t0 = time.perf_counter()
        result = self.pipeline.process(rgb, stamp)
        inference_ms = (time.perf_counter() - t0) * 1e3
        if self.worker.stopping:
            return
        header = m.copy_header(msg.header)
        max_id = max(result.class_ids, default=0)
        self.pub_labels.publish(m.image_msg(encode_labels(result.labels, max_id=max_id), header))
        self.pub_conf.publish(m.image_msg(encode_float(result.confidence), header))
        if self.pub_conf8 is not None:
            fields = encode_mono8(m.confidence_mono8(result.confidence))
            self.pub_conf8.publish(m.image_msg(fields, header))
        if self.pub_overlay.get_subscription_count() > 0:  # the blend costs: only when watched
            img = overlay(rgb, result.labels, self.values["overlay_alpha"], m.legend_for(result))
            self.pub_overlay.publish(m.image_msg(encode_rgb(img), header))
            self.health.overlay_computed()
        if stamp > 0:
            latency_ms = (self.get_clock().now().nanoseconds * 1e-9 - stamp) * 1e3
        else:  # unstamped input: measure from arrival instead
            latency_ms = (time.monotonic() - received) * 1e3
        dropped = self.worker.stats().dropped
        self.pub_seg.publish(m.segmentation_msg(result, header, inference_ms, latency_ms,
                                                dropped))
        self.health.frame_done(latency_ms, inference_ms)

    def _on_worker_error(self, item: Item, exc: BaseException) -> None:
        if self.worker.stopping:
            return  # publishers go away during shutdown
        stamp = m.stamp_seconds(item[0].header.stamp)
        text = f"frame stamped {stamp:.3f}: {type(exc).__name__}: {exc}"
        self.health.frame_failed(text)
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
            prompts = next((p for p in ours if p.name == "prompts"), None)
            if prompts is not None and list(prompts.value) != list(self.vocabulary()[0]):
                try:
                    self.pipeline.set_prompts(list(prompts.value))
                except Exception as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
            for p in ours:
                self.values[p.name] = list(p.value) if p.name == "prompts" else p.value
            names = {p.name for p in ours}
            if "threshold" in names:
                self._apply_threshold(self.values["threshold"])
            if "no_input_warn_s" in names:
                self.health.no_input_warn_s = self.values["no_input_warn_s"]
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
        report = self.health.report(self.count_publishers(self.input_topic),
                                    self.worker.stats().dropped, self.qos_desc)
        key = "".join(c for c in report.message if not c.isdigit())[:40]  # not per-second
        if report.level == WARN and self._throttle.ready(f"diag:{key}"):  # errors: logged already
            self.get_logger().warning(report.message)
        names, _, _, version = self.vocabulary()
        rt = self.segmenter.runtime
        extra = [("model", self.values["model"]), ("clip_weights", self.values["clip_weights"]),
                 ("device", str(rt.device)), ("precision", rt.precision),
                 ("mode", self.values["mode"]), ("vocabulary_size", str(len(names))),
                 ("vocabulary_version", str(version))]
        pl = self.pipeline
        if pl.config.enabled:
            extra += [("keyframes_started", str(pl.keyframes_started)),
                      ("keyframes_fused", str(pl.keyframes_fused)),
                      ("keyframe_errors", str(pl.keyframe_errors)),
                      ("last_keyframe_error", pl.last_keyframe_error or "")]
        name = f"{self.get_fully_qualified_name().lstrip('/')}: segmentation"
        self.pub_diag.publish(diagnostic_array(report, name, rt.describe(), extra,
                                               self.get_clock().now().to_msg()))

    def shutdown(self, timeout: float = 1.5) -> bool:
        """Stop the worker; False when a frame was still inside the model after `timeout`."""
        joined = self.worker.stop(timeout)
        if joined:  # a running CLIP-DIY keyframe is a daemon thread: don't wait long for it
            self.pipeline.close(timeout=0.3)
        return joined


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(args: list[str]) -> tuple[int, bool]:
    """Start, spin until SIGINT/SIGTERM, shut down. (exit code, worker joined)."""
    # rclpy's handlers shut the context down and then call the previous Python handler: for
    # SIGINT that raises KeyboardInterrupt, for SIGTERM nothing, so a SIGTERM during the
    # (long) model load would go unnoticed until the first ROS call fails. Make both raise.
    signal.signal(signal.SIGTERM, _interrupt)
    rclpy.init(args=args)
    try:
        node = SegmentNode()
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()
        return 0, True
    except Exception as exc:  # bad weights, missing checkpoint, no CUDA, invalid parameters
        rclpy.logging.get_logger("ovseg").fatal(f"start-up failed: {_one_line(exc)}")
        rclpy.try_shutdown()
        return 1, True
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    joined = True
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        joined = node.shutdown(timeout=1.0)
        executor.shutdown(timeout_sec=0.3)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0, joined


def main(args: list[str] | None = None, fast_exit: bool = True) -> int:
    """Entry point; exit code 1 on a start-up failure (after one error line), else 0.

    Shutdown takes < 2 s, but a frame already inside the model cannot be interrupted: after
    1 s the process exits without waiting for it. With `fast_exit` (the default) the
    process also skips the interpreter's native teardown (torch, DDS), which takes seconds on
    a loaded machine, once ROS is shut down in order.
    """
    rc, joined = _run(sys.argv if args is None else args)
    if not joined:
        print("ovseg: a frame was still in inference at shutdown; not waiting for it",
              file=sys.stderr, flush=True)
    if fast_exit or not joined:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
