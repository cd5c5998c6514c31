"""The node's own settings, and the full list of the segment node's parameters.

The node's parameters are the core's settings (SegmenterConfig, KeyframeConfig: the model,
weights, device, inference and keyframe settings) plus the node-only settings below (input,
outputs, health, lifecycle), all declared with `setting` (core/settings.py). ROS-free and
torch-free: the launch file, the CLI and the docs generator read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ovseg_ros.core.config import KeyframeConfig, SegmenterConfig
from ovseg_ros.core.settings import (
    ConfigError,
    Setting,
    check_config,
    from_values,
    setting,
    settings_of,
)

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
        keep their label ids, new names get new ids; an invalid list is refused and the
        previous vocabulary kept.""")
    autostart: bool = setting(True, group="lifecycle", doc="""
        Configure and activate at start, so the node runs without a lifecycle manager; false:
        wait in 'unconfigured' for ~/change_state (Nav2's lifecycle_manager, ros2 lifecycle).""")
    overlay_alpha: float = setting(0.5, group="outputs", low=0.0, high=1.0, dynamic=True, doc="""
        Weight of the class colour in ~/overlay (0 image only, 1 colour only). ~/overlay is
        computed only while something subscribes to it.""")
    publish_confidence_mono8: bool = setting(False, group="outputs", doc="""
        Also publish ~/confidence_mono8 (confidence scaled to 0-255, what Nav2's semantic
        segmentation layer reads).""")
    input_transport: str = setting("raw", group="input", choices=("raw", "compressed"), doc="""
        raw: subscribe 'image' (sensor_msgs/Image); compressed: 'image/compressed'
        (sensor_msgs/CompressedImage). Remap 'image' to the camera topic.""")
    qos: str = setting("auto", group="input", choices=("sensor_data", "reliable", "auto"), doc="""
        Input QoS. sensor_data: best effort; reliable: reliable; auto: match the publishers
        found when the node activates (sensor_data if none). Mismatches show in
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

    def __post_init__(self) -> None:
        check_config(self)


# Groups in the order they are declared and documented, with their titles.
GROUPS = {"vocabulary": "vocabulary", "lifecycle": "lifecycle", "model": "model and weights",
          "compute": "compute", "inference": "inference", "outputs": "outputs",
          "input": "input", "health": "health", "keyframes": "CLIP-DIY keyframes"}
# Every parameter of the segment node, grouped (field order within a group).
SETTINGS: tuple[Setting, ...] = tuple(sorted(
    settings_of(NodeConfig) + settings_of(SegmenterConfig) + settings_of(KeyframeConfig),
    key=lambda s: list(GROUPS).index(s.group)))
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
assert len(BY_NAME) == len(SETTINGS), "a setting name is declared twice"
DYNAMIC: frozenset[str] = frozenset(s.name for s in SETTINGS if s.dynamic)


def build_configs(values: Mapping[str, Any]
                  ) -> tuple[SegmenterConfig, KeyframeConfig, NodeConfig]:
    """The three configurations from parameter values; ConfigError naming every problem."""
    made: list[Any] = []
    found: list[str] = []
    for cls in (SegmenterConfig, KeyframeConfig, NodeConfig):
        try:
            made.append(from_values(cls, values))
        except ConfigError as exc:
            found.append(str(exc).removeprefix("invalid settings: "))
    if found:
        raise ConfigError("invalid settings: " + "; ".join(found))
    seg, keyframes, node = made
    return seg, keyframes, node
