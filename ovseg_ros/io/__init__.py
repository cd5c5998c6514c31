"""Image I/O without ROS: ROS image encodings <-> numpy, media files (numpy + OpenCV only).

The names below are loaded on first use, so that `ovseg_ros.io.labelspace` (`ovseg
labelspace`) imports without OpenCV.
"""

from __future__ import annotations

from ovseg_ros.core.lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MAX_PIXELS": "image_codec",
    "SUPPORTED_ENCODINGS": "image_codec",
    "ImageDecodeError": "image_codec",
    "ImageFields": "image_codec",
    "decode_compressed": "image_codec",
    "decode_image": "image_codec",
    "encode_16uc1": "image_codec",
    "encode_32sc1": "image_codec",
    "encode_float": "image_codec",
    "encode_labels": "image_codec",
    "encode_mono8": "image_codec",
    "encode_rgb": "image_codec",
    "image_rows": "image_codec",
    "peek_compressed_size": "image_codec",
    "Frame": "media",
    "FrameIterator": "media",
    "MediaError": "media",
    "VideoWriter": "media",
    "count_frames": "media",
    "iter_frames": "media",
    "list_images": "media",
    "read_image": "media",
    "samples_dir": "media",
    "write_png": "media",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
