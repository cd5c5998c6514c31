"""ROS-free model core: CLIP-DINOiser (per frame) and CLIP-DIY (keyframes). Never imports rclpy.

The names below are loaded on first use, so `ovseg_ros.core.config` and `.settings` (the
settings schema, read by the launch file and the docs generator) import without torch.
"""

from __future__ import annotations

from .lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
