"""The node's own settings, and the full list of the segment node's parameters.

The node's parameters are the core's settings (SegmenterConfig, KeyframeConfig: the model,
weights, device, inference and keyframe settings), the objects' (ObjectsConfig: instances,
tracks, 3D boxes) and the node-only settings below (input, outputs, health, lifecycle), all
declared with `setting` (core/settings.py). ROS-free and torch-free: the launch file, the CLI
and the docs generator read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ovseg_ros.core.config import KeyframeConfig, SegmenterConfig
from ovseg_ros.core.settings import (
    ConfigError,
    Setting,
    check_config,
    from_values,
    setting,
    settings_of,
)
from ovseg_ros.objects.config import ObjectsConfig

DEFAULT_PROMPTS = ["person", "chair", "table", "door", "floor", "wall"]
MAX_CAMERAS = 16
_CAMERA = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # one ROS name token


def _prompts_problem(prompts: list[str]) -> str | None:
    # The rest (duplicates, length in tokens, ...) is the vocabulary's, checked at configure.
    return None if prompts else "prompts is empty: give at least one class name"


def _cameras_problem(cameras: list[str]) -> str | None:
    bad = [c for c in cameras if not _CAMERA.match(c)]
    if bad:
        return f"cameras {bad} are not ROS name tokens (a letter, then letters, digits or _)"
    if len(set(cameras)) != len(cameras):
        return f"cameras {list(cameras)} contain duplicates"
    if len(cameras) > MAX_CAMERAS:
        return f"{len(cameras)} cameras exceed the limit of {MAX_CAMERAS}"
    return None


@dataclass(frozen=True)
class NodeConfig:
    """Settings of the ROS node itself (the core's are in SegmenterConfig / KeyframeConfig)."""

    prompts: list[str] = setting(DEFAULT_PROMPTS, group="vocabulary", dynamic=True,
                            check=_prompts_problem, doc="""
        Class names to segment. Setting it is the same as calling ~/set_prompts: known names
        keep their label ids, new names get ids as label_ids says; an invalid list is refused
        and the previous vocabulary kept.""")
    autostart: bool = setting(True, group="lifecycle", doc="""
        Configure and activate at start, so the node runs without a lifecycle manager; false:
        wait in 'unconfigured' for ~/change_state (Nav2's lifecycle_manager, ros2 lifecycle).""")
    overlay_alpha: float = setting(0.5, group="outputs", low=0.0, high=1.0, dynamic=True, doc="""
        Weight of the class colour in ~/overlay (0 image only, 1 colour only). ~/overlay is
        computed only while something subscribes to it.""")
    publish_confidence_mono8: bool = setting(False, group="outputs", doc="""
        Also publish ~/confidence_mono8 (confidence scaled to 0-255, what Nav2's semantic
        segmentation layer reads); always on with use_depth.""")
    label_space_dir: str = setting("", group="outputs", doc="""
        Folder to write Hydra's label-space files into (ovseg_label_space.yaml,
        ovseg_colormap.csv; see ovseg labelspace) at configure and on every vocabulary
        change; empty: none.""")
    input_transport: str = setting("raw", group="input", choices=("raw", "compressed"), doc="""
        raw: subscribe 'image' (sensor_msgs/Image); compressed: 'image/compressed'
        (sensor_msgs/CompressedImage). Remap 'image' to the camera topic.""")
    qos: str = setting("auto", group="input", choices=("sensor_data", "reliable", "auto"), doc="""
        Input QoS. sensor_data: best effort; reliable: reliable; auto: match the publishers
        found when the node activates; with none yet, sensor_data until the first ones
        appear, then matched to them (a reliable camera started after the node gets a
        reliable subscription: best effort loses most large images). Mismatches show in
        /diagnostics.""")
    qos_depth: int = setting(1, group="input", low=1, high=100, doc="""
        Input history depth (the node keeps only the newest frame anyway).""")
    cameras: list[str] = setting([], group="input", check=_cameras_problem, doc=f"""
        Camera names, for several inputs segmented in shared batches: camera <cam> reads
        <cam>/image (<cam>/image/compressed) and publishes ~/<cam>/labels, ~/<cam>/confidence,
        ~/<cam>/overlay and ~/<cam>/segmentation; ~/label_map stays shared. Keyframes follow
        the first camera. Empty: one input 'image', outputs under ~/. At most {MAX_CAMERAS}.""")
    max_image_pixels: int = setting(4096 * 4096, group="input", low=1, high=16384 * 16384,
                                    dynamic=True, doc="""
        Frames with more pixels are dropped before decoding (counted, warned).""")
    diagnostics_period: float = setting(1.0, group="health", low=0.1, high=60.0, doc="""
        Seconds between /diagnostics messages.""")
    no_input_warn_s: float = setting(5.0, group="health", low=0.5, high=3600.0, dynamic=True,
                                     doc="""
        /diagnostics warns after this many seconds without input.""")

    background_threads: int = setting(1, group="background", low=0, high=1024, dynamic=True,
                                      doc="""
        PyTorch threads that text encoding and query answering use while frames flow (a frame
        ended within the last second); 0 = PyTorch's default (one per core). Without frames
        they use every core. More threads encode new names sooner and slow the frames more.""")
    background_share: float = setting(0.5, group="background", low=0.05, high=1.0,
                                      dynamic=True, doc="""
        Most of the wall time text encoding and query answering take while frames flow: they
        run in slices of about 0.25 s between frames, and after a slice of t seconds rest
        t*(1-share)/share. 1 = no rest (new names encode fastest; frames slow most).""")
    text_queue: int = setting(2, group="background", low=0, high=64, dynamic=True, doc="""
        Text-encoding requests (new names from ~/set_prompts or the prompts parameter, new
        phrases of ~/query and ~/encode_text) that may wait behind the one being encoded; a
        further one is refused at once with success=false and when to call again. Names
        encoded once are kept on disk (cache_dir/text) and never queued again.""")
    query_rate_hz: float = setting(10.0, group="background", low=0.0, high=100000.0,
                                   dynamic=True, doc="""
        Most ~/query requests admitted per second (bursts up to one second's worth); beyond
        it a query is refused at once with when to call again. 0 = no limit.""")
    query_queue: int = setting(16, group="background", low=0, high=256, dynamic=True, doc="""
        Admitted ~/query requests that may wait for the query worker (one answer at a time,
        between frames); a further one is refused at once with when to call again.""")
    set_prompts_rate_hz: float = setting(2.0, group="background", low=0.0, high=100000.0,
                                         dynamic=True, doc="""
        Most ~/set_prompts calls admitted per second (bursts up to one second's worth);
        beyond it a call is refused at once with when to call again, nothing changed. 0 = no
        limit. Changes of the prompts parameter are not counted (they are taken one at a
        time).""")
    request_rate_hz: float = setting(40.0, group="background", low=0.0, high=100000.0,
                                     dynamic=True, doc="""
        Most requests of ~/query, ~/encode_text, ~/pixel_classes and ~/set_prompts the node
        takes per second, answered or refused, on a thread of their own. Further ones wait in
        the middleware, at most 10 per service (beyond that the oldest is dropped unanswered):
        clients that call again at once after a refusal are slowed to this rate instead of
        taking the frames' CPU. 0 = no limit.""")

    use_depth: bool = setting(False, group="depth", doc="""
        Also subscribe 'depth' (sensor_msgs/Image registered to the colour image: 16UC1
        millimetres or 32FC1 metres) and 'camera_info' (the colour camera's; with cameras,
        <cam>/depth and <cam>/camera_info), and publish the labelled organized cloud ~/points
        and the class markers ~/markers.""")
    depth_slop_s: float = setting(0.05, group="depth", low=0.0, high=1.0, doc="""
        Largest difference between colour and depth stamps that still pairs them; 0 = exact
        stamps only.""")
    points_stride: int = setting(1, group="depth", low=1, high=16, doc="""
        Keep every n-th row and column of the depth image in ~/points (Nav2's semantic layer
        needs 1: a cloud pixel-aligned with the label image).""")

    def __post_init__(self) -> None:
        check_config(self)


# Groups in the order they are declared and documented, with their titles.
GROUPS = {"vocabulary": "vocabulary", "lifecycle": "lifecycle", "model": "model and weights",
          "compute": "compute", "inference": "inference", "outputs": "outputs",
          "input": "input", "depth": "3D from registered depth",
          "objects": "objects (instances, tracks, 3D boxes)", "health": "health",
          "background": "background work (text encoding, queries)",
          "keyframes": "CLIP-DIY keyframes"}
# Every parameter of the segment node, grouped (field order within a group).
SETTINGS: tuple[Setting, ...] = tuple(sorted(
    settings_of(NodeConfig) + settings_of(SegmenterConfig) + settings_of(KeyframeConfig)
    + settings_of(ObjectsConfig),
    key=lambda s: list(GROUPS).index(s.group)))
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
assert len(BY_NAME) == len(SETTINGS), "a setting name is declared twice"
DYNAMIC: frozenset[str] = frozenset(s.name for s in SETTINGS if s.dynamic)


class Configs(NamedTuple):
    """Every configuration the segment node's parameters make."""

    segmenter: SegmenterConfig
    keyframes: KeyframeConfig
    node: NodeConfig
    objects: ObjectsConfig


def build_all(values: Mapping[str, Any]) -> Configs:
    """All configurations from parameter values; ConfigError naming every problem."""
    made: list[Any] = []
    found: list[str] = []
    for cls in (SegmenterConfig, KeyframeConfig, NodeConfig, ObjectsConfig):
        try:
            made.append(from_values(cls, values))
        except ConfigError as exc:
            found.append(str(exc).removeprefix("invalid settings: "))
    if found:
        raise ConfigError("invalid settings: " + "; ".join(found))
    return Configs(*made)


def build_configs(values: Mapping[str, Any]
                  ) -> tuple[SegmenterConfig, KeyframeConfig, NodeConfig]:
    """The core's and the node's configurations (`build_all` without the objects', which it
    still checks); ConfigError naming every problem."""
    seg, keyframes, node, _ = build_all(values)
    return seg, keyframes, node


@dataclass(frozen=True)
class ReplayConfig:
    """Parameters of the replay node (a stand-in camera for demos and tests)."""

    source: str = setting("", doc="""
        Image file, folder of images or video; empty = the shipped samples.""")
    rate: float = setting(2.0, low=0.01, high=1000.0, doc="Frames per second.")
    loop: bool = setting(True, doc="Start again at the end of the source.")
    transport: str = setting("raw", choices=("raw", "compressed"), doc="""
        raw: sensor_msgs/Image on 'image'; compressed: JPEG sensor_msgs/CompressedImage on
        'image/compressed'.""")
    encoding: str = setting("rgb8", choices=("rgb8", "bgr8"), doc="Encoding of raw images.")
    frame_id: str = setting("camera", doc="frame_id written into every header.")
    max_size: int = setting(0, low=0, high=16384, doc="""
        Downscale so the longest side is at most this many pixels; 0 = keep.""")
    qos: str = setting("sensor_data", choices=("sensor_data", "reliable"), doc="""
        sensor_data (best effort) or reliable.""")
    depth: bool = setting(False, doc="""
        Also publish SYNTHETIC registered depth ('depth', 16UC1 mm) and 'camera_info' with
        each frame's header, derived from the image (a floor, a wall, nearer colourful
        regions): for the use_depth demo, not a measurement.""")

    def __post_init__(self) -> None:
        check_config(self)
