"""ROS-free model core: CLIP-DINOiser (per frame) and CLIP-DIY (keyframes). Never imports rclpy."""

from .backends import BackendError
from .clipdiy import ClipDiyConfig
from .device import DeviceError, NumericalError, Runtime
from .pipeline import FramePipeline, KeyframeConfig
from .results import ClassStat, SegmentationResult
from .segmenter import Segmenter, SegmenterConfig
from .vocabulary import VocabularyError
from .weights import WeightsError

__all__ = [
    "BackendError",
    "ClassStat",
    "ClipDiyConfig",
    "DeviceError",
    "FramePipeline",
    "KeyframeConfig",
    "NumericalError",
    "Runtime",
    "SegmentationResult",
    "Segmenter",
    "SegmenterConfig",
    "VocabularyError",
    "WeightsError",
]
