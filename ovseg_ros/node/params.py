"""The node's parameters as plain data, their validation, and their declaration.

`PARAMS` and `validate()` need no rclpy, so the launch/config tests and tools can read them;
only `declare()` imports rclpy. Read-only parameters say in their description that a change
needs a restart (their value is used once, at start-up).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ParamValue = bool | int | float | str | list[str]

# Same as ovseg_ros.core.weights (not imported: that pulls in torch; a test keeps them equal).
DEFAULT_MODEL = "ViT-B-16"
DEFAULT_CLIP_WEIGHTS = "laion2b_s34b_b88k"
DEFAULT_HEADS_URL = "https://github.com/wysoczanska/clip_dinoiser/raw/main/checkpoints/last.pt"
DEFAULT_PROMPTS = ["person", "chair", "table", "door", "floor", "wall"]
_RESTART = " Read-only: set it at start-up (a change needs a restart)."
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_CAMERA_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # one ROS name token
MAX_CAMERAS = 16


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter type) and constraints."""

    name: str
    default: ParamValue
    description: str
    read_only: bool = False
    low: float | None = None  # inclusive numeric range (declared as a descriptor range)
    high: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def constraints(self) -> str:
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        if self.low is not None:
            parts.append(f"range [{self.low}, {self.high}]")
        return "; ".join(parts)


def _p(name: str, default: ParamValue, description: str, **kw: Any) -> ParamSpec:
    if kw.get("read_only"):
        description += _RESTART
    return ParamSpec(name, default, description, **kw)


PARAMS: tuple[ParamSpec, ...] = (
    # --- vocabulary (dynamic)
    _p("prompts", list(DEFAULT_PROMPTS),
       "Class names to segment. Setting it is the same as calling ~/set_prompts: known names "
       "keep their label ids, new names get new ids; an invalid list is refused and the "
       "previous vocabulary kept."),
    # Upper bound: the text-embedding cache keeps 4096 names (core/text.py max_entries).
    _p("max_prompts", 256, "Most class names one vocabulary may hold; a longer list is "
       "refused with the reason and the previous vocabulary kept.", low=1, high=4096),
    # --- model and weights (start-up only)
    _p("model", DEFAULT_MODEL, "open_clip model name the head checkpoint was trained for.",
       read_only=True),
    _p("clip_weights", DEFAULT_CLIP_WEIGHTS,
       "CLIP weights: an open_clip pretrained tag (downloaded into cache_dir), a local file, "
       "or 'random' (seeded random weights, for tests only).", read_only=True),
    _p("heads", DEFAULT_HEADS_URL,
       "CLIP-DINOiser head checkpoint: local path or https URL (cached), or 'random'.",
       read_only=True),
    _p("heads_sha256", "", "Expected sha256 of the head checkpoint; empty = not checked.",
       read_only=True),
    _p("cache_dir", "", "Download cache; empty = $OVSEG_CACHE or ~/.cache/ovseg_ros.",
       read_only=True),
    _p("device", "auto", "auto, cpu, cuda or cuda:N. Asking for CUDA where there is none is a "
       "start-up error.", read_only=True),
    _p("precision", "auto", "Compute dtype; auto = bf16 where the hardware runs it natively, "
       "else fp32 (fp16 on CUDA without bf16).", read_only=True,
       choices=("auto", "fp32", "bf16", "fp16")),
    _p("mode", "whole", "whole: one forward per frame; slide: 448 px windows, stride 224 "
       "(the paper's protocol, slower).", read_only=True, choices=("whole", "slide")),
    _p("input_size", 448, "Short side in pixels the frame is resized to before inference; "
       "0 keeps the frame size.", read_only=True, low=0, high=4096),
    _p("background", True, "Add the implicit class 'background' (id 0) and the objectness "
       "rule; when false id 0 only means 'below threshold'.", read_only=True),
    # --- per-frame output (dynamic)
    _p("threshold", 0.0, "Pixels whose confidence is below this get id 0 (unlabelled).",
       low=0.0, high=1.0),
    _p("overlay_alpha", 0.5, "Weight of the class colour in ~/overlay (0 image, 1 colour).",
       low=0.0, high=1.0),
    _p("publish_confidence_mono8", False,
       "Also publish ~/confidence_mono8 (confidence scaled to 0-255, e.g. for Nav2).",
       read_only=True),
    # --- input
    _p("input_transport", "raw", "raw: subscribe 'image' (sensor_msgs/Image); compressed: "
       "subscribe 'image/compressed' (sensor_msgs/CompressedImage).", read_only=True,
       choices=("raw", "compressed")),
    _p("qos", "auto", "Input QoS. sensor_data: best effort, volatile; reliable: reliable, "
       "volatile; auto: match the publishers found at start-up (sensor_data if none).",
       read_only=True, choices=("sensor_data", "reliable", "auto")),
    _p("qos_depth", 1, "Input history depth (the node keeps only the newest frame anyway).",
       read_only=True, low=1, high=100),
    _p("cameras", [], "Camera names, for several inputs segmented in shared batches. Each "
       "name <cam> subscribes <cam>/image (<cam>/image/compressed with compressed transport) "
       "and publishes ~/<cam>/labels, ~/<cam>/confidence, ~/<cam>/overlay and "
       "~/<cam>/segmentation; ~/label_map stays shared. Keyframes follow the first camera. "
       f"Empty: one input 'image', outputs under ~/. At most {MAX_CAMERAS}.", read_only=True),
    _p("max_image_pixels", 4096 * 4096, "Frames with more pixels are dropped before decoding.",
       low=1, high=16384 * 16384),
    # --- health
    _p("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", read_only=True,
       low=0.1, high=60.0),
    _p("no_input_warn_s", 5.0, "Diagnostics warn after this many seconds without input.",
       low=0.5, high=3600.0),
    # --- CLIP-DIY keyframes
    _p("keyframes", False, "Load CLIP-DIY so keyframes can run: on ~/keyframe requests, on "
       "vocabulary changes and on the schedule below. Also on when a schedule is set.",
       read_only=True),
    _p("keyframe_every_n", 0, "Run a CLIP-DIY keyframe every N frames; 0 = no frame schedule.",
       read_only=True, low=0, high=1000000),
    _p("keyframe_every_s", 0.0, "Run a keyframe at least every S seconds; 0 = no time "
       "schedule.", read_only=True, low=0.0, high=86400.0),
    _p("keyframe_on_prompt_change", True, "Run a keyframe on the first frame after a "
       "vocabulary change (when keyframes are on).", read_only=True),
    _p("keyframe_fusion_weight", 0.5, "Weight of the keyframe's CLIP-DIY scores when fused "
       "into the frame's CLIP-DINOiser scores; 0 = prior only.", read_only=True,
       low=0.0, high=1.0),
    _p("prior_half_life_frames", 30.0, "Frames after which a keyframe's class-presence prior "
       "has decayed to half its weight; 0 = no prior (unless prior_half_life_s is set).",
       read_only=True, low=0.0, high=100000.0),
    _p("prior_half_life_s", 0.0, "Seconds (by frame stamps) after which the prior has decayed "
       "to half; > 0 replaces prior_half_life_frames.", read_only=True, low=0.0, high=86400.0),
    _p("keyframe_model", "", "open_clip model for CLIP-DIY; empty = reuse the segmentation "
       "CLIP (no extra weights). The CLIP-DIY paper uses ViT-B-32.", read_only=True),
    _p("keyframe_weights", "", "Weights for keyframe_model: pretrained tag (e.g. "
       "laion2b_s34b_b79k), local file or 'random'.", read_only=True),
)

SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
PARAM_NAMES: frozenset[str] = frozenset(SPECS)


def _type_ok(default: ParamValue, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def validate(name: str, value: Any) -> str | None:
    """None when `value` is acceptable for parameter `name`, else the reason it is not.

    Vocabulary checks (duplicates, length, ...) are the core's; this checks types and ranges.
    """
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    if not _type_ok(spec.default, value):
        return f"{name} must be a {type(spec.default).__name__}, got {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be finite, got {value}"
    if spec.low is not None and not spec.low <= value <= spec.high:  # type: ignore[operator]
        return f"{name}={value} is outside [{spec.low}, {spec.high}]"
    if spec.choices and value not in spec.choices:
        return f"{name}={value!r} is not one of {', '.join(spec.choices)}"
    if name == "device" and not _DEVICE_RE.match(str(value).strip().lower()):
        return f"device={value!r}: use auto, cpu, cuda or cuda:N"
    if name == "cameras":
        return _camera_problem(list(value))
    return None


def _camera_problem(cameras: list[str]) -> str | None:
    bad = [c for c in cameras if not _CAMERA_RE.match(c)]
    if bad:
        return f"cameras {bad} are not ROS name tokens (a letter, then letters, digits or _)"
    if len(set(cameras)) != len(cameras):
        return f"cameras {cameras} contain duplicates"
    if len(cameras) > MAX_CAMERAS:
        return f"{len(cameras)} cameras exceed the limit of {MAX_CAMERAS}"
    return None


def validate_all(values: Mapping[str, Any]) -> list[str]:
    """Every reason found in `values` (empty when all are acceptable)."""
    return [r for name, v in values.items() if (r := validate(name, v)) is not None]


def descriptor(spec: ParamSpec):  # -> rcl_interfaces.msg.ParameterDescriptor
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )

    d = spec.default
    ptype = (ParameterType.PARAMETER_BOOL if isinstance(d, bool)
             else ParameterType.PARAMETER_INTEGER if isinstance(d, int)
             else ParameterType.PARAMETER_DOUBLE if isinstance(d, float)
             else ParameterType.PARAMETER_STRING if isinstance(d, str)
             else ParameterType.PARAMETER_STRING_ARRAY)
    desc = ParameterDescriptor(name=spec.name, type=ptype, description=spec.description,
                               additional_constraints=spec.constraints,
                               read_only=spec.read_only)
    if spec.low is not None and isinstance(d, float):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    elif spec.low is not None:
        desc.integer_range = [IntegerRange(
            from_value=int(spec.low), to_value=int(spec.high), step=1)]
    return desc


def declare(node) -> dict[str, ParamValue]:
    """Declare every parameter on an rclpy node; returns the values in effect.

    Raises ValueError naming every invalid start-up value (rclpy itself refuses out-of-range
    numbers and wrong types while declaring).
    """
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    # An empty list has no ROS type (rclpy would declare a byte array, and YAML `[]` arrives
    # unset): declare such parameters typed but unset, and read unset as the empty list.
    node.declare_parameters("", [
        (s.name, Parameter.Type.STRING_ARRAY if s.default == [] else s.default, descriptor(s))
        for s in PARAMS])
    values: dict[str, ParamValue] = {}
    for s in PARAMS:
        try:
            values[s.name] = node.get_parameter(s.name).value
        except ParameterUninitializedException:
            values[s.name] = []
    values["prompts"] = list(values["prompts"])  # type: ignore[arg-type]
    values["cameras"] = list(values["cameras"])  # type: ignore[arg-type]
    problems = validate_all(values)
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    return values
