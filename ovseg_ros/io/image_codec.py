"""ROS image encodings <-> numpy, our own replacement for cv_bridge.

Plain numpy + OpenCV, no rclpy: the node and the command line share it.

``decode_image`` takes the raw fields of a ``sensor_msgs/Image`` and returns RGB uint8
(H, W, 3). Every size is validated before anything large is allocated, so a malformed or
hostile message costs nothing. ``rgb8`` without row padding is returned as a zero-copy view
of the message buffer (read-only when the buffer is ``bytes``); everything else costs one
conversion copy.

Conventions (documented choices):

* 16-bit images (mono16, 16UC1, rgb16..., 16-bit Bayer) are scaled to 8 bits by ``>> 8``.
  For mono/colour that is the high byte, read without any arithmetic; 16-bit Bayer is
  demosaiced at full depth first, then shifted.
* ``32FC1`` is a float intensity image in [0, 1] (the cv_bridge/OpenCV display convention):
  values are clipped to [0, 1] and scaled to 0..255. NaN or +-Inf anywhere is rejected with
  an ``ImageDecodeError`` rather than silently mapped, because a float image carrying
  non-finite values (depth, disparity) is not a camera image to segment.
* ``yuv422`` is UYVY byte order (ROS's definition); ``yuyv``/``yuv422_yuy2`` is YUY2.
  Both need an even width.
* ROS names Bayer patterns by the top-left 2x2 block (``bayer_rggb8``: row 0 = R G,
  row 1 = G B). OpenCV's legacy codes name the pattern by the block starting at the second
  row and column, so ROS ``rggb`` is OpenCV ``BayerBG``; see ``_BAYER``.
"""

from __future__ import annotations

import array
from dataclasses import dataclass

import cv2
import numpy as np

from ovseg_ros.io.image_header import HeaderError, header_size

Buffer = bytes | bytearray | memoryview | array.array | np.ndarray

DEFAULT_MAX_PIXELS = 4096 * 4096


class ImageDecodeError(ValueError):
    """An image message or compressed buffer that cannot be decoded (the message says why)."""


@dataclass(frozen=True)
class _Enc:
    kind: str  # "color", "mono", "yuv", "bayer", "float"
    channels: int  # samples per pixel in the buffer (yuv: 2 bytes per pixel -> 2)
    depth: int  # bytes per sample
    code: int | None  # cv2 conversion code to RGB (None: already RGB / handled in code)

    @property
    def bpp(self) -> int:
        return self.channels * self.depth


# ROS pattern (top-left 2x2 block) -> OpenCV legacy code. OpenCV names the pattern by the
# 2x2 block at (1, 1): for RGGB that block is B G / G R, hence "BG".
_BAYER = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}

_ENCODINGS: dict[str, _Enc] = {
    "rgb8": _Enc("color", 3, 1, None),
    "bgr8": _Enc("color", 3, 1, cv2.COLOR_BGR2RGB),
    "rgba8": _Enc("color", 4, 1, cv2.COLOR_RGBA2RGB),
    "bgra8": _Enc("color", 4, 1, cv2.COLOR_BGRA2RGB),
    "rgb16": _Enc("color", 3, 2, None),
    "bgr16": _Enc("color", 3, 2, cv2.COLOR_BGR2RGB),
    "rgba16": _Enc("color", 4, 2, cv2.COLOR_RGBA2RGB),
    "bgra16": _Enc("color", 4, 2, cv2.COLOR_BGRA2RGB),
    "mono8": _Enc("mono", 1, 1, cv2.COLOR_GRAY2RGB),
    "mono16": _Enc("mono", 1, 2, cv2.COLOR_GRAY2RGB),
    "yuv422": _Enc("yuv", 2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": _Enc("yuv", 2, 1, cv2.COLOR_YUV2RGB_UYVY),
    "yuyv": _Enc("yuv", 2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "yuv422_yuy2": _Enc("yuv", 2, 1, cv2.COLOR_YUV2RGB_YUY2),
    "32FC1": _Enc("float", 1, 4, cv2.COLOR_GRAY2RGB),
}
for _pat, _code in _BAYER.items():
    _ENCODINGS[f"bayer_{_pat}8"] = _Enc("bayer", 1, 1, _code)
    _ENCODINGS[f"bayer_{_pat}16"] = _Enc("bayer", 1, 2, _code)
# OpenCV-style type names, read as cv_bridge does.
_ENCODINGS["8UC1"] = _ENCODINGS["mono8"]
_ENCODINGS["8UC3"] = _ENCODINGS["bgr8"]
_ENCODINGS["8UC4"] = _ENCODINGS["bgra8"]
_ENCODINGS["16UC1"] = _ENCODINGS["mono16"]

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_BY_LOWER = {k.lower(): k for k in _ENCODINGS}


def _lookup(encoding: str) -> tuple[str, _Enc]:
    key = _BY_LOWER.get(str(encoding).strip().lower())
    if key is None:
        raise ImageDecodeError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    return key, _ENCODINGS[key]


def _byte_view(data: Buffer) -> np.ndarray:
    """Flat uint8 view of any buffer-protocol object, without copying."""
    try:
        mv = memoryview(data)
    except TypeError as exc:
        raise ImageDecodeError(f"image data of type {type(data).__name__} is not a buffer") from exc
    if not mv.c_contiguous:
        raise ImageDecodeError("image data buffer is not contiguous")
    return np.frombuffer(mv.cast("B") if mv.ndim != 1 or mv.format != "B" else mv, np.uint8)


def _check_size(height: int, width: int, max_pixels: int, what: str) -> None:
    if height <= 0 or width <= 0:
        raise ImageDecodeError(
            f"{what}: invalid size {width}x{height} (width x height must be > 0)"
        )
    if height * width > max_pixels:
        raise ImageDecodeError(
            f"{what}: {width}x{height} = {height * width} pixels exceeds the limit "
            f"max_pixels={max_pixels}"
        )


def image_rows(
    what: str,
    bytes_per_pixel: int,
    height: int,
    width: int,
    step: int,
    data: Buffer,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """(H, width * bytes_per_pixel) uint8 view of an image message's rows, padding skipped.

    Validates the size (> 0, <= ``max_pixels``), ``step >= width * bytes_per_pixel`` and
    ``len(data) >= height * step`` before touching the data, raising ``ImageDecodeError``
    with ``what`` (usually the encoding) in the message. No copy: the view aliases ``data``.
    """
    height, width, step = int(height), int(width), int(step)
    _check_size(height, width, max_pixels, what)
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageDecodeError(
            f"{what}: step {step} is too small for width {width}: need at least "
            f"width*{bytes_per_pixel} = {row_bytes} bytes per row"
        )
    buf = _byte_view(data)
    if buf.size < height * step:
        raise ImageDecodeError(
            f"{what}: data is truncated: {buf.size} bytes, need height*step = "
            f"{height}*{step} = {height * step}"
        )
    return buf[: height * step].reshape(height, step)[:, :row_bytes]


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: int | bool,
    data: Buffer,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode the fields of a ``sensor_msgs/Image`` into RGB uint8 (H, W, 3), C-contiguous.

    Raises ``ImageDecodeError`` for an unknown encoding, a size <= 0 or above ``max_pixels``,
    ``step < width * bytes_per_pixel``, data shorter than ``height * step``, an odd width for
    YUV 4:2:2, or non-finite values in ``32FC1``. All checks run before any allocation.
    An unpadded ``rgb8`` result is a view of ``data`` (read-only for ``bytes``, and it aliases
    the message buffer): copy it before modifying it in place.
    """
    name, enc = _lookup(encoding)
    height, width = int(height), int(width)
    rows = image_rows(name, enc.bpp, height, width, step, data, max_pixels)
    if enc.kind == "yuv" and width % 2:
        raise ImageDecodeError(f"{name}: YUV 4:2:2 needs an even width, got {width}")
    big = bool(is_bigendian)

    if enc.kind == "float":
        dt = np.dtype(">f4" if big else "<f4")
        f = rows.view(dt).reshape(height, width)
        finite = np.isfinite(f)
        if not finite.all():
            bad = int(finite.size - np.count_nonzero(finite))
            raise ImageDecodeError(
                f"{name}: {bad} of {f.size} pixels are NaN or Inf; 32FC1 input must be finite"
            )
        gray = (np.clip(f, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)

    if enc.kind == "bayer":
        if enc.depth == 1:
            mosaic = rows.reshape(height, width)
            return np.ascontiguousarray(cv2.cvtColor(mosaic, enc.code))
        # Demosaic at full depth (native-endian copy first), then scale.
        mosaic16 = rows.view(np.dtype(">u2" if big else "<u2")).astype(np.uint16)
        rgb16 = cv2.cvtColor(mosaic16.reshape(height, width), enc.code)
        return (rgb16 >> 8).astype(np.uint8)

    if enc.depth == 2:
        # The high byte of each sample is exactly value >> 8: strided view, no arithmetic.
        hi = 0 if big else 1
        rows = rows[:, hi::2]

    if enc.kind == "yuv":
        return cv2.cvtColor(rows.reshape(height, width, 2), enc.code)
    if enc.kind == "mono":
        return cv2.cvtColor(np.ascontiguousarray(rows), enc.code)
    img = rows.reshape(height, width, enc.channels)
    if enc.code is None:
        return img if img.flags.c_contiguous else np.ascontiguousarray(img)
    return cv2.cvtColor(np.ascontiguousarray(img) if enc.depth == 2 else img, enc.code)


# --------------------------------------------------------------------------- compressed


def peek_compressed_size(data: Buffer) -> tuple[int, int] | None:
    """(width, height) read from a compressed image's header without decoding; None if the
    format is unknown or its header does not say (see ``io.image_header``)."""
    try:
        _, w, h = header_size(_as_bytes(data))
    except HeaderError:
        return None
    return w, h


def _as_bytes(data: Buffer) -> bytes:
    return data if isinstance(data, bytes) else _byte_view(data).tobytes()


def decode_compressed(
    format: str, data: Buffer, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` payload (JPEG, PNG, ...) to RGB uint8 (H, W, 3).

    ``format`` is only used for messages and to refuse ``compressedDepth`` (a depth image, not
    a colour one). The size is read from the header (``io.image_header``: every format this
    OpenCV decodes) and checked against ``max_pixels`` before any pixel is decoded; a format
    or header whose size cannot be read that way is refused (a decompression bomb costs
    gigabytes once decoded). The decoded size is checked again.
    """
    fmt = str(format or "")
    if "compresseddepth" in fmt.lower():
        raise ImageDecodeError(f"compressed format {fmt!r} is a depth image, not a colour image")
    buf = _byte_view(data)
    if buf.size == 0:
        raise ImageDecodeError(f"compressed image ({fmt or 'unknown format'}) has no data")
    try:
        kind, w, h = header_size(_as_bytes(data))
    except HeaderError as exc:
        raise ImageDecodeError(
            f"cannot decode compressed image ({fmt!r}, {buf.size} bytes): {exc}"
        ) from exc
    _check_size(h, w, max_pixels, f"compressed {fmt or 'image'} ({kind} header)")
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageDecodeError(f"cannot decode compressed image ({fmt!r}): {exc}") from exc
    if bgr is None or bgr.size == 0:
        raise ImageDecodeError(
            f"cannot decode compressed image ({fmt!r}, {buf.size} bytes): corrupt or unsupported"
        )
    _check_size(bgr.shape[0], bgr.shape[1], max_pixels, f"compressed {fmt or 'image'}")
    if bgr.dtype != np.uint8:  # IMREAD_COLOR gives 8 bits; guard against plugins that don't
        bgr = (bgr >> 8).astype(np.uint8) if bgr.dtype == np.uint16 else bgr.astype(np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- encoders


@dataclass(frozen=True)
class ImageFields:
    """The fields of a ``sensor_msgs/Image`` (little-endian, step = width * bytes per pixel).

    Assigning ``bytes`` to an rclpy ``Image.data`` validates every byte in Python (slow for
    full frames); assign ``as_array()`` (an ``array.array('B')``) instead.
    """

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: bytes | memoryview

    def as_array(self) -> array.array:
        out = array.array("B")
        out.frombytes(self.data)
        return out


def _fields(arr: np.ndarray, encoding: str, bpp: int) -> ImageFields:
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    return ImageFields(encoding, int(h), int(w), int(w * bpp), 0, arr.tobytes())


def _require(arr: np.ndarray, ndim: int, what: str) -> None:
    if not isinstance(arr, np.ndarray) or arr.ndim != ndim:
        got = getattr(arr, "shape", type(arr).__name__)
        raise ValueError(f"{what}: expected a {ndim}-D array, got {got}")


def encode_labels(
    labels: np.ndarray, force_mono16: bool = False, max_id: int | None = None
) -> ImageFields:
    """Label ids (H, W) uint8/uint16 -> mono8, or mono16 when ids may exceed 255.

    Pass ``max_id`` (the vocabulary's largest id) so the encoding does not flip between mono8
    and mono16 from frame to frame with the content; without it the frame's own maximum
    decides. ``force_mono16`` always gives mono16.
    """
    _require(labels, 2, "encode_labels")
    if labels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"encode_labels: expected uint8 or uint16 labels, got {labels.dtype}")
    if max_id is not None:
        wide = max_id > 255
    else:
        wide = labels.dtype == np.uint16 and labels.size > 0 and int(labels.max()) > 255
    if not (force_mono16 or wide):
        if labels.dtype == np.uint16 and labels.size and int(labels.max()) > 255:
            raise ValueError(f"encode_labels: ids above 255 present but max_id={max_id}")
        return _fields(labels.astype(np.uint8, copy=False), "mono8", 1)
    return _fields(labels.astype("<u2", copy=False), "mono16", 2)


def encode_float(arr: np.ndarray) -> ImageFields:
    """Float image (H, W) -> 32FC1 (e.g. per-pixel confidence)."""
    _require(arr, 2, "encode_float")
    return _fields(arr.astype("<f4", copy=False), "32FC1", 4)


def encode_16uc1(arr: np.ndarray) -> ImageFields:
    """uint16 image (H, W) -> 16UC1 (e.g. depth in millimetres, 0 = no reading)."""
    _require(arr, 2, "encode_16uc1")
    if arr.dtype != np.uint16:
        raise ValueError(f"encode_16uc1: expected uint16, got {arr.dtype}")
    return _fields(arr.astype("<u2", copy=False), "16UC1", 2)


def encode_32sc1(arr: np.ndarray) -> ImageFields:
    """int32 image (H, W) -> 32SC1 (e.g. Hydra's class + instance image)."""
    _require(arr, 2, "encode_32sc1")
    if arr.dtype != np.int32:
        raise ValueError(f"encode_32sc1: expected int32, got {arr.dtype}")
    return _fields(arr.astype("<i4", copy=False), "32SC1", 4)


def encode_rgb(arr: np.ndarray) -> ImageFields:
    """RGB uint8 (H, W, 3) -> rgb8."""
    _require(arr, 3, "encode_rgb")
    if arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"encode_rgb: expected (H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    return _fields(arr, "rgb8", 3)


def encode_mono8(arr: np.ndarray) -> ImageFields:
    """Grey uint8 (H, W) -> mono8 (e.g. confidence scaled to 0..255 for Nav2)."""
    _require(arr, 2, "encode_mono8")
    if arr.dtype != np.uint8:
        raise ValueError(f"encode_mono8: expected uint8, got {arr.dtype}")
    return _fields(arr, "mono8", 1)
