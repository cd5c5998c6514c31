"""ROS-free model core: CLIP-DINOiser (per frame) and CLIP-DIY (keyframes). Never imports rclpy."""

from .device import DeviceError, Runtime
from .results import ClassStat, SegmentationResult
from .segmenter import Segmenter, SegmenterConfig
from .vocabulary import VocabularyError
from .weights import WeightsError

__all__ = [
    "ClassStat",
    "DeviceError",
    "Runtime",
    "SegmentationResult",
    "Segmenter",
    "SegmenterConfig",
    "VocabularyError",
    "WeightsError",
]
