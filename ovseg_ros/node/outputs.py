"""What configure creates and cleanup destroys: the core pipeline with its vocabulary, each
camera's lifecycle publishers and health monitor, and the latched label map publishers; and
the changes a configured node accepts while running (vocabulary, dynamic parameters)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from ovseg_ros.core import device as D
from ovseg_ros.core.config import KeyframeConfig, SegmenterConfig
from ovseg_ros.core.device import release_memory
from ovseg_ros.core.pipeline import FramePipeline
from ovseg_ros.core.segmenter import Segmenter
from ovseg_ros.core.vocabulary import MAX_MONO8_ID, Vocabulary
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.depth import DepthInput
from ovseg_ros.frame.log import FrameLog
from ovseg_ros.frame.step import FrameStep, StepCamera, StepSettings
from ovseg_ros.frame.types import default_distro
from ovseg_ros.io.labelspace import write_label_space
from ovseg_ros.msg import FeatureMap, LabelMap, Segmentation
from ovseg_ros.node import camera as C
from ovseg_ros.node import qos as Q
from ovseg_ros.node.diagnostics import (
    OK,
    WARN,
    HealthMonitor,
    Report,
    Throttle,
    diagnostic_array,
    node_status,
)
from ovseg_ros.node.features import FeatureImage, FeatureOutputs, FeatureSpace
from ovseg_ros.node.frames import LabelSink
from ovseg_ros.node.wire import check_wire
from ovseg_ros.settings.parameters import DYNAMIC, NodeConfig

try:  # optional: not every ROS install has vision_msgs
    from vision_msgs.msg import LabelInfo
except ImportError:
    LabelInfo = None


class Outputs:
    """The configured part of the node. `node_config` is swapped whole on a dynamic change."""

    def __init__(self, node: Any, pipeline: FramePipeline, cameras: list[C.Camera],
                 label_map: Any, label_info: Any, node_config: NodeConfig) -> None:
        self.pipeline = pipeline
        self.cameras = cameras
        self.label_map = label_map
        self.label_info = label_info
        self.node_config = node_config
        self.log = node.get_logger()
        self.throttle = Throttle(5.0)  # depth warnings, one per kind per 5 s
        self.warned_mono16 = False
        self.stamp = lambda: node.get_clock().now().to_msg()
        self.frame_log = FrameLog(self.log)  # refused frames: one line per kind per 5 s
        self.step: FrameStep | None = None  # set by create()

    @classmethod
    def create(cls, node: Any, seg: SegmenterConfig, keyframes: KeyframeConfig,
               cfg: NodeConfig, ids_from: Vocabulary | None = None) -> Outputs:
        """Load the model, encode the prompts, create the publishers (raises on failure, with
        nothing left behind). ids_from: the previous configuration's vocabulary, whose label
        ids and version carry over."""
        pipeline = FramePipeline(Segmenter(seg, ids_from), keyframes)
        out = cls(node, pipeline, [], None, None, cfg)
        made: list[Any] = []
        try:
            pipeline.set_prompts(cfg.prompts)
            out.write_label_space()  # at configure; then with every label map
            out.warn_mono16()
            out.cameras = [out._camera(node, name, made) for name in cfg.cameras or [""]]
            out.label_map = _pub(node, made, LabelMap, "~/label_map", Q.latched())
            if LabelInfo is not None:
                out.label_info = _pub(node, made, LabelInfo, "~/label_info", Q.latched())
            else:
                node.get_logger().warning(
                    "vision_msgs is not installed: ~/label_info (Nav2's class map) is not "
                    "published; install ros-$ROS_DISTRO-vision-msgs (scripts/setup.sh builds "
                    "it)")
            out.step = out._frame_step()
            check_wire(out.step.builder, [p.msg_type for p in made])
        except Exception:
            for pub in made:
                node.destroy_lifecycle_publisher(pub)
            pipeline.close(timeout=0.3)
            raise
        return out

    def _frame_step(self) -> FrameStep:
        seg = self.pipeline.segmenter
        from ovseg_ros.core.features import FEATURE_VERSION, LOGIT_SCALE

        cams = [StepCamera(c.name, c.input_topic, c.depth) for c in self.cameras]
        return FrameStep(self.pipeline, cams, self.step_settings, builder_for(default_distro()),
                         self.frame_log, FeatureSpace(seg.config.model, seg.weights_id,
                                                      FEATURE_VERSION), LOGIT_SCALE)

    def step_settings(self) -> StepSettings:
        """The frame step's settings from the node's current (dynamic) values."""
        cfg = self.node_config
        return StepSettings(cfg.max_image_pixels, cfg.overlay_alpha)

    @property
    def vocabulary_publishers(self) -> dict[str, Any]:
        return {k: v for k, v in (("label_map", self.label_map),
                                  ("label_info", self.label_info)) if v is not None}

    def _camera(self, node: Any, name: str, made: list[Any]) -> C.Camera:
        cfg = self.node_config
        base = f"{name}/" if name else ""
        topic = node.resolve_topic_name(base + ("image/compressed"
                                                if cfg.input_transport == "compressed"
                                                else "image"))
        out, prefix = Q.outputs(), f"~/{base}"
        conf8 = (_pub(node, made, Image, prefix + "confidence_mono8", out)
                 if cfg.publish_confidence_mono8 or cfg.use_depth else None)
        # Dynamic settings are read where they act (no copy to update on a change).
        health = HealthMonitor(lambda: self.node_config.no_input_warn_s, topic)
        cam = C.Camera(name, topic, health,
                       _pub(node, made, Image, prefix + "labels", out),
                       _pub(node, made, Image, prefix + "confidence", out), conf8,
                       _pub(node, made, Image, prefix + "overlay", out),
                       _pub(node, made, Segmentation, prefix + "segmentation", out))
        seg = self.pipeline.segmenter
        from ovseg_ros.core.features import FEATURE_VERSION

        cam.extras = FeatureOutputs(
            name, _pub(node, made, FeatureMap, prefix + "features", out),
            _pub(node, made, FeatureImage, prefix + "feature_image", out)
            if FeatureImage is not None else None,
            FeatureSpace(seg.config.model, seg.weights_id, FEATURE_VERSION))
        if cfg.use_depth:
            cam.points = _pub(node, made, PointCloud2, prefix + "points", out)
            cam.markers = _pub(node, made, MarkerArray, prefix + "markers", out)
            cam.depth = DepthInput(node.resolve_topic_name(base + "depth"),
                                   node.resolve_topic_name(base + "camera_info"),
                                   cfg.depth_slop_s, cfg.points_stride,
                                   lambda: self.node_config.max_image_pixels, self.log,
                                   self.throttle)
        return cam

    # ---- vocabulary and dynamic settings (the node serialises these calls) ----------------------

    def vocabulary(self) -> tuple[tuple[str, ...], tuple[int, ...], bool, int]:
        snap = self.pipeline.segmenter.snapshot
        return snap.names, snap.ids, snap.background, snap.version

    def vocabulary_text(self) -> str:
        names, ids, _, version = self.vocabulary()
        pairs = ", ".join(f"{n}({i})" for n, i in zip(names, ids, strict=True))
        return f"vocabulary v{version}: {pairs}"

    def publish_label_map(self) -> None:
        """The label map and LabelInfo of the current vocabulary, now (latched), through the
        frame step, which also announces a new vocabulary before the first frame using it."""
        self.write_label_space()
        self.warn_mono16()
        self.step.announce(self.pipeline.segmenter.snapshot, self.stamp(),
                           LabelSink(self.vocabulary_publishers, self.step.builder), force=True)

    def write_label_space(self) -> None:
        """Hydra's label-space files for the current vocabulary (label_space_dir); a failure
        is logged, never raised (the vocabulary change itself succeeded)."""
        folder = self.node_config.label_space_dir
        if not folder:
            return
        names, ids, background, _ = self.vocabulary()
        try:
            write_label_space(Path(folder), names, ids, background)
        except OSError as exc:
            self.log.warning(f"label_space_dir: could not write Hydra's files: {exc}")

    def warn_mono16(self) -> None:
        """Warn once when the vocabulary's ids pass 255: the label image is then mono16, which
        Nav2's semantic segmentation layer misreads (one byte per pixel, uint8 class ids)."""
        names, ids, _, _ = self.vocabulary()
        top = max(ids, default=0)
        if top <= MAX_MONO8_ID or self.warned_mono16:
            return
        self.warned_mono16 = True
        if self.pipeline.segmenter.config.label_ids == "reuse":
            why, fix = f"{len(names)} classes at once", "use at most 255 classes"
        else:
            why = "label_ids:=stable: every name used so far keeps an id of its own"
            fix = "label_ids:=reuse keeps ids within the vocabulary's size"
        self.log.warning(
            f"label id {top} > {MAX_MONO8_ID}: ~/labels is mono16 now ({why}). Nav2's semantic "
            "segmentation layer reads one byte per pixel and keeps class ids as uint8, so it "
            f"misreads a mono16 label image: for Nav2, {fix}.")

    def set_prompts(self, prompts: Sequence[str]) -> None:
        """Swap the vocabulary (raises VocabularyError), log old -> new, republish the map."""
        before = self.vocabulary_text()
        self.pipeline.set_prompts(list(prompts))
        after = self.vocabulary_text()
        if after.split(": ", 1)[1] != before.split(": ", 1)[1]:
            self.log.info(f"{before} -> {after}")
        self.publish_label_map()

    def apply_dynamic(self, new: dict[str, Any]) -> str | None:
        """Apply dynamic parameter changes, all or nothing; the reason when refused."""
        seg = self.pipeline.segmenter
        core = {k: v for k, v in new.items() if k in DYNAMIC and hasattr(seg.config, k)}
        old_core = {k: getattr(seg.config, k) for k in core}
        prompts = new.get("prompts")
        if prompts is not None and list(prompts) == list(self.vocabulary()[0]):
            prompts = None  # the mirror of a set_prompts call, or no change
        limit = core.get("max_prompts", seg.config.max_prompts)
        if prompts is not None and len(prompts) > limit:
            return f"{len(prompts)} prompts exceed the limit of {limit}"
        # A larger limit goes first, a smaller one after the (shorter) list it must admit.
        limit_first = limit >= seg.config.max_prompts
        try:
            if limit_first:
                seg.reconfigure(**core)
            if prompts is not None:
                self.set_prompts(prompts)
            if not limit_first:
                seg.reconfigure(**core)
            node = {k: v for k, v in new.items() if hasattr(self.node_config, k)}
            self.node_config = replace(self.node_config, **node)
        except Exception as exc:  # ConfigError, VocabularyError
            seg.reconfigure(**old_core)
            return str(exc)
        if "threshold" in new:  # LabelInfo carries it
            self.publish_label_map()
        return None

    def diagnostics(self, node: Any, base: str, state: str, worker: Any, throttle: Throttle,
                    stamp: Any) -> DiagnosticArray:
        """One status per camera; WARNs are logged (once per kind per 5 s)."""
        names, _, _, version = self.vocabulary()
        oom = self.step.frames_out_of_memory if self.step is not None else 0
        extra = node_status(self.pipeline, state, len(names), version, oom) + (
            node.heavy.status() if hasattr(node, "heavy") else [])
        describe = self.pipeline.segmenter.runtime.describe()
        statuses = []
        for cam in self.cameras:
            if state == "active":
                dropped = worker.dropped(cam.name) if worker is not None else 0
                report = cam.health.report(node.count_publishers(cam.input_topic), dropped,
                                           cam.qos_desc)
            else:
                report = Report(OK, f"{state}: model loaded, not subscribed (activate to "
                                "segment)")
            if cam.depth is not None:
                report.values += cam.depth.values()
                if state == "active" and report.level == OK and cam.depth.last_problem:
                    report.level = WARN
                    report.message += f"; no point cloud: {cam.depth.last_problem}"
            key = "".join(c for c in report.message if not c.isdigit())[:40]  # not per-second
            if report.level == WARN and throttle.ready(f"diag:{key}"):  # errors: logged
                node.get_logger().warning(report.message)
            name = f"{base} {cam.name}" if cam.name else base
            statuses += diagnostic_array(report, name, describe, extra, stamp).status
        arr = DiagnosticArray(status=statuses)
        arr.header.stamp = stamp
        return arr

    def release_cache(self) -> None:
        """After deactivate: drop the kept latest frames (their features hold device memory;
        queries are refused while inactive anyway) and give the device's cached blocks back
        (the model stays)."""
        for cam in self.cameras:
            if cam.extras is not None:
                cam.extras.clear()
        D.free_device_memory(self.pipeline.segmenter.runtime.device)

    def destroy(self, node: Any) -> None:
        """Cleanup: publishers gone, model unloaded and its memory returned."""
        for cam in self.cameras:
            for pub in cam.publishers:
                node.destroy_lifecycle_publisher(pub)
        for pub in (self.label_map, self.label_info):
            if pub is not None:
                node.destroy_lifecycle_publisher(pub)
        device = self.pipeline.segmenter.runtime.device
        self.pipeline.close(timeout=0.3)
        self.pipeline = self.step = None  # the last references: the model's memory can go
        self.cameras = []
        release_memory(device)


def _pub(node: Any, made: list[Any], msg_type: Any, topic: str, qos: Any) -> Any:
    pub = node.create_lifecycle_publisher(msg_type, topic, qos)
    made.append(pub)
    return pub

