"""Image I/O without ROS: ROS image encodings <-> numpy, media files (numpy + OpenCV only)."""

from ovseg_ros.io.image_codec import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    ImageFields,
    decode_compressed,
    decode_image,
    encode_float,
    encode_labels,
    encode_mono8,
    encode_rgb,
    peek_compressed_size,
)
from ovseg_ros.io.media import (
    Frame,
    FrameIterator,
    MediaError,
    VideoWriter,
    count_frames,
    iter_frames,
    list_images,
    read_image,
    write_png,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_ENCODINGS",
    "Frame",
    "FrameIterator",
    "ImageDecodeError",
    "ImageFields",
    "MediaError",
    "VideoWriter",
    "count_frames",
    "decode_compressed",
    "decode_image",
    "encode_float",
    "encode_labels",
    "encode_mono8",
    "encode_rgb",
    "iter_frames",
    "list_images",
    "peek_compressed_size",
    "read_image",
    "write_png",
]
