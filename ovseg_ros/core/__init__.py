"""ROS-free model core: CLIP-DINOiser (per frame) and CLIP-DIY (keyframes). Never imports rclpy.

The names below are loaded on first use, so `ovseg_ros.core.config` and `.settings` (the
settings schema, read by the launch file and the docs generator) import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackendError": "backends",
    "ClipDiyConfig": "config",
    "ConfigError": "settings",
    "DeviceError": "errors",
    "FramePipeline": "pipeline",
    "KeyframeConfig": "config",
    "NumericalError": "errors",
    "Runtime": "device",
    "ClassStat": "results",
    "SegmentationResult": "results",
    "Segmenter": "segmenter",
    "SegmenterConfig": "config",
    "VocabularyError": "vocabulary",
    "WeightsError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
