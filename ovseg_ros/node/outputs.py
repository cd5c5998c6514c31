"""What configure creates and cleanup destroys: the core pipeline with its vocabulary, each
camera's lifecycle publishers and health monitor, the latched label map publishers and the
frame step; with the vocabulary's outputs (vocabulary_outputs.py) and the dynamic settings
(dynamic.py) it hands the node."""

from __future__ import annotations

from typing import Any

from ovseg_ros.core.config import KeyframeConfig, SegmenterConfig
from ovseg_ros.core.device import free_device_memory
from ovseg_ros.core.pipeline import FramePipeline
from ovseg_ros.core.segmenter import Segmenter
from ovseg_ros.core.vocabulary import Vocabulary
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.depth import DepthInput
from ovseg_ros.frame.log import FrameLog, Throttle
from ovseg_ros.frame.outputs import VOCABULARY_TABLE, Output, OutputSettings, frame_outputs
from ovseg_ros.frame.step import FrameStep, StepCamera, StepSettings, make_step
from ovseg_ros.frame.types import default_distro
from ovseg_ros.node import qos
from ovseg_ros.node.camera import Camera
from ovseg_ros.node.diagnostics import HealthMonitor
from ovseg_ros.node.dynamic import DynamicSettings
from ovseg_ros.node.features import FeatureOutputs, FeatureSpace
from ovseg_ros.node.vocabulary_outputs import VocabularyOutputs
from ovseg_ros.node.wire import check_wire, message_class
from ovseg_ros.objects.config import ObjectsConfig
from ovseg_ros.settings.parameters import NodeConfig

# What a missing optional interface package costs, said once at configure.
MISSING_PACKAGE = {
    "vision_msgs": "install ros-$ROS_DISTRO-vision-msgs (scripts/setup.sh builds it)",
    "semantic_inference_msgs": "install MIT-SPARK's semantic_inference_msgs",
}


class Outputs:
    """The configured part of the node."""

    def __init__(self, node: Any, pipeline: FramePipeline, node_config: NodeConfig,
                 objects: ObjectsConfig) -> None:
        self.pipeline = pipeline
        self.cameras: list[Camera] = []
        self.label_map: Any = None
        self.label_info: Any = None
        self.log = node.get_logger()
        self.throttle = Throttle(5.0)  # depth warnings, one per kind per 5 s
        self.frame_log = FrameLog(self.log)  # refused frames: one line per kind per 5 s
        self.vocabulary = VocabularyOutputs(pipeline, lambda: self.node_config.label_space_dir,
                                            self.log, lambda: node.get_clock().now().to_msg())
        self.settings = DynamicSettings(node_config, objects, self.vocabulary)
        self.step: FrameStep | None = None  # set by create()
        self._missing: dict[str, list[str]] = {}  # optional package -> outputs left out

    @property
    def node_config(self) -> NodeConfig:
        """The node's current settings (swapped whole on a dynamic change)."""
        return self.settings.current

    @classmethod
    def create(cls, node: Any, seg: SegmenterConfig, keyframes: KeyframeConfig,
               cfg: NodeConfig, objects: ObjectsConfig,
               ids_from: Vocabulary | None = None) -> Outputs:
        """Load the model, encode the prompts, create the publishers (raises on failure, with
        nothing left behind). ids_from: the previous configuration's vocabulary, whose label
        ids and version carry over."""
        pipeline = FramePipeline(Segmenter(seg, ids_from), keyframes)
        out = cls(node, pipeline, cfg, objects)
        made: list[Any] = []
        try:
            pipeline.set_prompts(cfg.prompts)
            out.vocabulary.write_label_space()  # at configure; then with every label map
            out.vocabulary.warn_mono16()
            out.cameras = [out._camera(node, name, made) for name in cfg.cameras or [""]]
            vocab = {row.name: out._publisher(node, made, row, "~/") for row in VOCABULARY_TABLE}
            out.label_map, out.label_info = vocab["label_map"], vocab["label_info"]
            out._warn_missing()
            out.step = out._frame_step()
            out.vocabulary.publishers, out.vocabulary.step = out.vocabulary_publishers, out.step
            check_wire(out.step.builder, [p.msg_type for p in made])
        except Exception:
            for pub in made:
                node.destroy_lifecycle_publisher(pub)
            pipeline.close(timeout=0.3)
            raise
        return out

    def _frame_step(self) -> FrameStep:
        cams = [StepCamera(c.name, c.input_topic, c.depth) for c in self.cameras]
        return make_step(self.pipeline, cams, self.step_settings,
                         builder_for(default_distro()), self.frame_log)

    def step_settings(self) -> StepSettings:
        """The frame step's settings from the node's current (dynamic) values."""
        cfg = self.node_config
        return StepSettings(cfg.max_image_pixels, cfg.overlay_alpha, self.settings.objects)

    @property
    def vocabulary_publishers(self) -> dict[str, Any]:
        return {k: v for k, v in (("label_map", self.label_map),
                                  ("label_info", self.label_info)) if v is not None}

    def _camera(self, node: Any, name: str, made: list[Any]) -> Camera:
        """One camera: a publisher per output row it has (frame/outputs.py), its health
        monitor, its latest-frame slot and, with use_depth, its depth input."""
        cfg = self.node_config
        base = f"{name}/" if name else ""
        topic = node.resolve_topic_name(base + ("image/compressed"
                                                if cfg.input_transport == "compressed"
                                                else "image"))
        # Dynamic settings are read where they act (no copy to update on a change).
        health = HealthMonitor(lambda: self.node_config.no_input_warn_s, topic)
        cam = Camera(name, topic, health)
        for row in frame_outputs(OutputSettings(cfg, self.settings.objects), cfg.use_depth):
            pub = self._publisher(node, made, row, f"~/{base}")
            if pub is not None:
                cam.publishers[row.name] = pub
        seg = self.pipeline.segmenter
        from ovseg_ros.core.features import FEATURE_VERSION

        cam.extras = FeatureOutputs(name, FeatureSpace(seg.config.model, seg.weights_id,
                                                       FEATURE_VERSION))
        if cfg.use_depth:
            cam.depth = DepthInput(node.resolve_topic_name(base + "depth"),
                                   node.resolve_topic_name(base + "camera_info"),
                                   cfg.depth_slop_s, cfg.points_stride,
                                   lambda: self.node_config.max_image_pixels, self.log,
                                   self.throttle)
        return cam

    def _publisher(self, node: Any, made: list[Any], row: Output, prefix: str) -> Any | None:
        """A lifecycle publisher for one output row, or None when its message package is not
        installed (noted for `_warn_missing`)."""
        cls = message_class(row.msgtype)
        if cls is None:
            self._missing.setdefault(row.package, []).append(prefix + row.name)
            return None
        return _pub(node, made, cls, prefix + row.name, qos.profile(row.qos))

    def _warn_missing(self) -> None:
        for package, topics in self._missing.items():
            self.log.warning(f"{package} is not installed: {', '.join(topics)} not published; "
                             f"{MISSING_PACKAGE.get(package, f'install {package}')}")

    def release_cache(self) -> None:
        """After deactivate: drop the kept latest frames (their features hold device memory;
        queries are refused while inactive anyway) and give the device's cached blocks back
        (the model stays)."""
        for cam in self.cameras:
            if cam.extras is not None:
                cam.extras.clear()
        free_device_memory(self.pipeline.segmenter.runtime.device)

    def destroy(self, node: Any) -> Any:
        """Cleanup: publishers gone, background work stopped and every reference to the model
        dropped; the device the model was on (torch.device). The caller drops this object,
        then calls `core.device.release_memory(device)`: its collection must run once nothing
        reaches the model any more (the callbacks made here refer back to this object, so
        the model sits in reference cycles that only a collection frees)."""
        for cam in self.cameras:
            for pub in cam.publishers.values():
                node.destroy_lifecycle_publisher(pub)
        for pub in (self.label_map, self.label_info):
            if pub is not None:
                node.destroy_lifecycle_publisher(pub)
        device = self.pipeline.segmenter.runtime.device
        self.pipeline.close(timeout=0.3)
        self.pipeline = self.step = self.label_map = self.label_info = None
        self.vocabulary.pipeline = self.vocabulary.step = None
        self.vocabulary.publishers = {}
        self.cameras = []
        return device

def _pub(node: Any, made: list[Any], msg_type: Any, topic: str, qos: Any) -> Any:
    pub = node.create_lifecycle_publisher(msg_type, topic, qos)
    made.append(pub)
    return pub

