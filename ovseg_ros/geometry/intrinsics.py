"""Pinhole intrinsics from a CameraInfo's numbers, scaled between resolutions, and pixel rays.

Pixel convention: integer pixel coordinates are pixel centres (OpenCV, ROS). Resizing an
image by s maps a centre u to (u + 0.5) * s - 0.5, so scaled intrinsics are
``fx' = fx * sx`` and ``cx' = (cx + 0.5) * sx - 0.5`` (likewise for y). This is exact for
block binning, decimation and cv2.resize; image_geometry's ``cx * sx`` differs from it by
(sx - 1) / 2 pixels.

Only K is used: the images are expected to be rectified, or their distortion small enough to
ignore over a registered depth image (what depth_image_proc and the RealSense, ZED and OAK
drivers publish). Skewed K matrices are refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class CameraInfoError(ValueError):
    """A CameraInfo that cannot give intrinsics for a depth image (the message says why)."""


@dataclass(frozen=True)
class PinholeIntrinsics:
    """fx, fy, cx, cy in pixels for an image of width x height pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_camera_info(
        cls,
        k: Sequence[float],
        width: int,
        height: int,
        binning_x: int = 0,
        binning_y: int = 0,
        roi: Sequence[int] = (0, 0, 0, 0),
    ) -> PinholeIntrinsics:
        """From ``CameraInfo.k`` (row-major 3x3), ``width``/``height``, and optionally
        ``binning_x``/``binning_y`` (0 or 1 = none) and ``roi`` as (x_offset, y_offset,
        width, height) (a zero width or height = the full image). The ROI is applied first,
        then binning, as CameraInfo defines them. Raises ``CameraInfoError``."""
        vals = [float(v) for v in k]
        if len(vals) != 9:
            raise CameraInfoError(f"camera_info K has {len(vals)} values, expected 9")
        if not all(math.isfinite(v) for v in vals):
            raise CameraInfoError(f"camera_info K has NaN or Inf values: {vals}")
        if not (vals[0] > 0 and vals[4] > 0):  # an uncalibrated driver sends K = 0
            raise CameraInfoError(
                f"camera_info has focal lengths fx={vals[0]:g}, fy={vals[4]:g}: zero or "
                "negative means the camera is not calibrated; calibrate it "
                "(camera_calibration) or fix the driver's camera_info"
            )
        if vals[8] <= 0 or vals[3] != 0 or vals[6] != 0 or vals[7] != 0:
            raise CameraInfoError(f"camera_info K is not an intrinsic matrix: {vals}")
        fx, skew, cx, fy, cy = (vals[i] / vals[8] for i in (0, 1, 2, 4, 5))
        if abs(skew) > 1e-9 * fx:
            raise CameraInfoError(f"camera_info K has skew {skew:g}; rectify the images first")
        w, h = int(width), int(height)
        x0, y0, rw, rh = (int(v) for v in roi)
        if rw > 0 and rh > 0:
            if x0 < 0 or y0 < 0 or x0 + rw > w or y0 + rh > h:
                raise CameraInfoError(f"camera_info ROI {tuple(roi)} lies outside {w}x{h}")
            cx, cy, w, h = cx - x0, cy - y0, rw, rh
        if w <= 0 or h <= 0:
            raise CameraInfoError(f"camera_info size {w}x{h} is empty")
        intr = cls(fx, fy, cx, cy, w, h)
        bx, by = max(1, int(binning_x)), max(1, int(binning_y))
        return intr if bx == by == 1 else intr.scaled_to(w // bx, h // by, 1.0 / bx, 1.0 / by)

    def scaled_to(self, width: int, height: int, sx: float | None = None,
                  sy: float | None = None) -> PinholeIntrinsics:
        """The same camera seen at width x height (scale factors default to the size ratio)."""
        sx = width / self.width if sx is None else sx
        sy = height / self.height if sy is None else sy
        return PinholeIntrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                                 (self.cy + 0.5) * sy - 0.5, int(width), int(height))

    def for_image(self, width: int, height: int,
                  colour_size: tuple[int, int] | None = None) -> PinholeIntrinsics:
        """Intrinsics for a depth image of width x height.

        The CameraInfo must describe the depth image itself or the colour image
        (``colour_size`` = (width, height)) that the depth is registered to and resized
        from; anything else raises ``CameraInfoError``."""
        if (self.width, self.height) == (width, height):
            return self
        if colour_size is not None and (self.width, self.height) == tuple(colour_size):
            check_resized(colour_size, (width, height))
            return self.scaled_to(width, height)
        colour = f" or the colour image's {colour_size[0]}x{colour_size[1]}" if colour_size else ""
        raise CameraInfoError(
            f"camera_info is for {self.width}x{self.height} but the depth image is "
            f"{width}x{height}; it must match the depth image{colour}: use the colour "
            "camera's camera_info and depth registered to it"
        )


def check_resized(src: tuple[int, int], dst: tuple[int, int]) -> None:
    """Refuse a (width, height) pair that is not one image resized (same aspect, +-1 px)."""
    (sw, sh), (dw, dh) = src, dst
    if dw <= 0 or dh <= 0 or sw <= 0 or sh <= 0:
        raise CameraInfoError(f"empty image size {sw}x{sh} or {dw}x{dh}")
    if abs(dw - sw * dh / sh) > 1.0 and abs(dh - sh * dw / sw) > 1.0:
        raise CameraInfoError(
            f"depth {dw}x{dh} is not the colour image {sw}x{sh} resized (aspect ratios "
            f"{dw / dh:.4f} vs {sw / sh:.4f}): the depth must be registered to the colour "
            "camera (depth_image_proc's register node, or the driver's aligned depth)"
        )


def check_depth_fits(intr: PinholeIntrinsics, depth_hw: tuple[int, int],
                     labels_hw: tuple[int, int]) -> None:
    """CameraInfoError unless the intrinsics are the depth image's and the label image is a
    plain resize of it (`check_resized`); sizes (H, W)."""
    h, w = depth_hw
    if (intr.width, intr.height) != (w, h):
        raise CameraInfoError(f"intrinsics are for {intr.width}x{intr.height}, the depth image "
                              f"is {w}x{h}")
    check_resized((labels_hw[1], labels_hw[0]), (w, h))


@functools.lru_cache(maxsize=32)
def pixel_rays(intr: PinholeIntrinsics, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inverse intrinsics per sampled column and row: ((W',) (u - cx) / fx, (H',) (v - cy) / fy)
    for u = 0, stride, 2 * stride, ... < width (and v likewise). x = rx[u] z, y = ry[v] z.

    Cached per (intrinsics, stride), i.e. computed once per CameraInfo change and resolution.
    The arrays are read-only."""
    rx = ((np.arange(0, intr.width, stride, dtype=np.float64) - intr.cx) / intr.fx)
    ry = ((np.arange(0, intr.height, stride, dtype=np.float64) - intr.cy) / intr.fy)
    rx, ry = rx.astype(np.float32), ry.astype(np.float32)
    rx.setflags(write=False)
    ry.setflags(write=False)
    return rx, ry


@functools.lru_cache(maxsize=32)
def nearest_index(n_dst: int, n_src: int, stride: int = 1) -> np.ndarray | slice:
    """Source index (nearest pixel centre) of destination pixels 0, stride, ... < n_dst, for
    an image of n_src pixels along that axis resized to n_dst. A plain slice when the sizes
    are equal, so sampling stays a view."""
    if n_dst == n_src:
        return slice(0, n_src, stride)
    dst = np.arange(0, n_dst, stride, dtype=np.float64)
    idx = np.floor((dst + 0.5) * (n_src / n_dst)).astype(np.intp)
    np.clip(idx, 0, n_src - 1, out=idx)
    idx.setflags(write=False)
    return idx
