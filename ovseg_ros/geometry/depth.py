"""Depth images (the fields of a ``sensor_msgs/Image``) -> float32 metres, NaN = no reading.

Accepted encodings (REP 118):

* ``16UC1``: unsigned millimetres, 0 = no reading. ``mono16`` is read the same way, since
  it is what OpenNI-style drivers (e.g. the ZED wrapper's ``openni_depth_mode``) publish on
  a depth topic.
* ``32FC1``: metres; NaN, +-Inf, 0 and negative values are no reading.

Anything else (a colour image, ``compressedDepth``, a disparity image) is refused with a
``DepthDecodeError`` naming the encoding. Step, endianness, truncation and size limits are
checked by the image codec's ``image_rows`` before the data is read.

``32FC1`` without row padding whose invalid readings are all NaN already is returned as a
zero-copy view of the message buffer (read-only for ``bytes``); everything else costs one
pass that writes a new float32 array.
"""

from __future__ import annotations

import numpy as np

from ovseg_ros.io.image_codec import DEFAULT_MAX_PIXELS, Buffer, ImageDecodeError, image_rows

DEPTH_ENCODINGS = ("16UC1", "32FC1")
_ALIASES = {"16uc1": "16UC1", "mono16": "16UC1", "32fc1": "32FC1"}

# mm -> m for every uint16 value, 0 -> NaN: one table lookup decodes a 16UC1 image.
_MM_TO_M = np.arange(65536, dtype=np.float64).astype(np.float32) * np.float32(0.001)
_MM_TO_M[0] = np.nan
_MM_TO_M.setflags(write=False)


class DepthDecodeError(ImageDecodeError):
    """A depth image that cannot be read (unsupported encoding, bad size, truncated data)."""


def depth_encoding(encoding: str) -> str:
    """The canonical depth encoding for ``encoding`` ("16UC1" or "32FC1"), else raise."""
    key = _ALIASES.get(str(encoding).strip().lower())
    if key is None:
        hint = ""
        if "compresseddepth" in str(encoding).lower():
            hint = " (decompress it first, e.g. with image_transport's republish node)"
        raise DepthDecodeError(
            f"unsupported depth encoding {encoding!r}{hint}: the depth topic must carry "
            "16UC1 (millimetres, 0 = no reading) or 32FC1 (metres) registered to the colour "
            "camera"
        )
    return key


def decode_depth(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: int | bool,
    data: Buffer,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Fields of a depth ``sensor_msgs/Image`` -> (H, W) float32 metres, NaN where invalid.

    Raises ``DepthDecodeError`` for an encoding other than 16UC1/32FC1 (and mono16, read as
    16UC1) and for the size, step and truncation errors of ``image_rows``. The result may be a
    read-only view of ``data`` (32FC1 only): copy it before writing into it.
    """
    name = depth_encoding(encoding)
    try:
        rows = image_rows(f"depth {name}", 2 if name == "16UC1" else 4, height, width, step,
                          data, max_pixels)
    except ImageDecodeError as exc:  # the codec's size/step/truncation errors, as depth errors
        raise DepthDecodeError(str(exc)) from exc
    h, w = int(height), int(width)
    big = bool(is_bigendian)
    if name == "16UC1":
        mm = rows.view(np.dtype(">u2" if big else "<u2")).reshape(h, w)
        return np.take(_MM_TO_M, mm)
    metres = rows.view(np.dtype(">f4" if big else "<f4")).reshape(h, w)
    # Invalid but not NaN yet: 0, negative, +Inf (-Inf is negative). NaN compares False.
    fix = ~(metres > 0) | (metres == np.inf)
    fix &= ~np.isnan(metres)
    if metres.dtype.isnative and metres.flags.c_contiguous and not fix.any():
        return metres
    out = metres.astype(np.float32)  # native-endian, contiguous copy
    out[fix] = np.nan
    return out
