"""The semantic point cloud: depth + label image + confidence -> one organized structured array.

Point layout (24 bytes, little-endian, the bytes of a ``sensor_msgs/PointCloud2``'s data):

    x, y, z      float32 metres in the camera's optical frame (x right, y down, z forward):
                 x = (u - cx) z / fx, y = (v - cy) z / fy at depth pixel (u, v); NaN where
                 the depth has no reading
    rgb          float32 holding 0x00RRGGBB (PCL's packed-rgb convention; alpha 0 keeps the
                 float finite): the label map colour of the point's class
    label        uint32 label id (0 = background / unlabelled)
    confidence   float32 confidence of that label

The cloud has the depth image's resolution (rows and columns decimated by ``stride``), in
row-major pixel order. Label, rgb and confidence are sampled from the label image at the
nearest pixel centre when the label image has another resolution, and are kept for invalid
points too, so the cloud stays pixel-aligned with the mask.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ovseg_ros.viz import palette

from .intrinsics import (
    PinholeIntrinsics,
    check_depth_fits,
    nearest_index,
    pixel_rays,
)

# sensor_msgs/PointField datatypes
FLOAT32 = 7
UINT32 = 6


@dataclass(frozen=True)
class CloudField:
    """One PointField: name, byte offset in a point, PointField datatype, count."""

    name: str
    offset: int
    datatype: int
    count: int = 1


FIELDS: tuple[CloudField, ...] = (
    CloudField("x", 0, FLOAT32),
    CloudField("y", 4, FLOAT32),
    CloudField("z", 8, FLOAT32),
    CloudField("rgb", 12, FLOAT32),
    CloudField("label", 16, UINT32),
    CloudField("confidence", 20, FLOAT32),
)
POINT_STEP = 24
_NUMPY = {FLOAT32: "<f4", UINT32: "<u4"}
POINT_DTYPE = np.dtype({"names": [f.name for f in FIELDS],
                        "formats": [_NUMPY[f.datatype] for f in FIELDS],
                        "offsets": [f.offset for f in FIELDS], "itemsize": POINT_STEP})


@dataclass(frozen=True)
class SemanticCloud:
    """An organized cloud: ``points`` (H', W') of ``POINT_DTYPE``, C-contiguous.

    ``valid``: points with a depth reading. ``stride``: decimation of the depth image's rows
    and columns. ``intrinsics``: those of the depth image the points were projected with.
    """

    points: np.ndarray
    valid: int
    stride: int
    intrinsics: PinholeIntrinsics

    @property
    def height(self) -> int:
        return int(self.points.shape[0])

    @property
    def width(self) -> int:
        return int(self.points.shape[1])

    @property
    def fields(self) -> tuple[CloudField, ...]:
        return FIELDS

    @property
    def point_step(self) -> int:
        return POINT_STEP

    @property
    def row_step(self) -> int:
        return POINT_STEP * self.width

    @property
    def is_dense(self) -> bool:
        """False as soon as one point is NaN (PointCloud2's meaning)."""
        return self.valid == self.points.size

    def data(self) -> memoryview:
        """The PointCloud2 data bytes (height * row_step), without a copy."""
        return memoryview(self.points.reshape(-1).view(np.uint8))


@functools.lru_cache(maxsize=4)
def _packed_colours(n: int) -> np.ndarray:
    """(n,) float32 whose bits are 0x00RRGGBB of the palette colour of ids 0..n-1."""
    rgb = palette(n).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    out = packed.view(np.float32)
    out.setflags(write=False)
    return out


def packed_colours(max_id: int) -> np.ndarray:
    """Packed rgb floats for ids 0..max_id (and beyond, up to a power of two >= 256)."""
    n = 256
    while n <= max_id:
        n *= 2
    return _packed_colours(n)


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Packed rgb float32 (...) -> (..., 3) uint8."""
    bits = np.asarray(rgb, dtype=np.float32).view(np.uint32)  # same itemsize: any strides
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], -1).astype(np.uint8)


def _check_image(name: str, arr: np.ndarray, kinds: str) -> None:
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind not in kinds:
        got = f"{arr.shape} {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"build_cloud: {name} must be a 2-D array of kind {kinds!r}, got {got}")


def build_cloud(
    depth: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    intrinsics: PinholeIntrinsics,
    stride: int = 1,
) -> SemanticCloud:
    """Project a depth image and attach the labels: (H, W) metres -> SemanticCloud.

    depth: (H, W) float32 metres, NaN = no reading (``decode_depth``'s output; zeros,
    negatives and Inf are treated as no reading too). labels: (h, w) unsigned ids and
    confidence: (h, w) float, of the colour image the depth is registered to (any size with
    the same aspect ratio). intrinsics: of the depth image (``PinholeIntrinsics.for_image``).
    stride >= 1 keeps rows and columns 0, stride, 2 * stride, ...

    Raises ``CameraInfoError`` when the intrinsics or the label image do not fit the depth
    image and ``ValueError`` for malformed arrays.
    """
    _check_image("depth", depth, "f")
    _check_image("labels", labels, "u")
    _check_image("confidence", confidence, "f")
    if labels.shape != confidence.shape:
        raise ValueError(f"build_cloud: labels {labels.shape} and confidence "
                         f"{confidence.shape} differ")
    stride = int(stride)
    if stride < 1:
        raise ValueError(f"build_cloud: stride must be >= 1, got {stride}")
    h, w = depth.shape
    check_depth_fits(intrinsics, (h, w), labels.shape)

    z = depth[::stride, ::stride]
    rx, ry = pixel_rays(intrinsics, stride)
    rows, cols = nearest_index(h, labels.shape[0], stride), nearest_index(w, labels.shape[1],
                                                                           stride)
    lab = _sample(labels, rows, cols)
    conf = _sample(confidence, rows, cols)

    flat = np.empty((*z.shape, POINT_STEP // 4), np.float32)
    np.multiply(z, rx[None, :], out=flat[..., 0])
    np.multiply(z, ry[:, None], out=flat[..., 1])
    flat[..., 2] = z
    max_id = int(lab.max()) if lab.size else 0
    flat[..., 3] = np.take(packed_colours(max_id), lab)  # faster than take(out=strided)
    flat.view(np.uint32)[..., 4] = lab
    flat[..., 5] = conf

    valid_mask = (z > 0) & (z < np.inf)
    valid = int(np.count_nonzero(valid_mask))
    if valid + int(np.count_nonzero(np.isnan(z))) != z.size:  # 0, negative or Inf readings
        flat[..., :3][~valid_mask] = np.nan
    points = flat.view(POINT_DTYPE).reshape(z.shape)
    return SemanticCloud(points, valid, stride, intrinsics)


def _sample(img: np.ndarray, rows: np.ndarray | slice, cols: np.ndarray | slice) -> np.ndarray:
    """img at the given rows and columns (each an index array or a slice; slices stay views)."""
    if isinstance(rows, slice) and isinstance(cols, slice):
        return img[rows, cols]
    return img[rows][:, cols]
