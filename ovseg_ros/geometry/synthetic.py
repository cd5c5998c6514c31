"""SYNTHETIC depth and CameraInfo for images that have none (the shipped samples, the demo).

Not a depth estimate: a fixed, simple scene derived deterministically from the image, so the
replay demo can exercise the whole 3D path. The scene, for a camera 1.2 m above a floor and
looking horizontally at a wall 4 m away (60 degree horizontal field of view):

* the floor plane below the horizon, the wall above it (z = min(floor, wall));
* "objects": where the image is colourful (smoothed HSV saturation > 0.4) the depth is pulled
  forward to 1.5..2.5 m, more colourful = nearer;
* no reading (0) in a 4% band at the left border (as stereo cameras have) and on nearly white,
  unsaturated pixels (as on specular or overexposed surfaces).

Every output says it is synthetic (``SYNTHETIC_NOTE``); depth is 16UC1 millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .intrinsics import PinholeIntrinsics

SYNTHETIC_NOTE = ("SYNTHETIC depth: a fixed scene derived from the image (floor, wall, "
                  "colourful regions nearer), not a measurement")
CAMERA_HEIGHT_M = 1.2
WALL_M = 4.0
HFOV_DEG = 60.0


@dataclass(frozen=True)
class SyntheticDepth:
    """depth_mm: (H, W) uint16 millimetres, 0 = no reading; intrinsics of that image."""

    depth_mm: np.ndarray
    intrinsics: PinholeIntrinsics
    note: str = SYNTHETIC_NOTE


def synthetic_intrinsics(width: int, height: int, hfov_deg: float = HFOV_DEG
                         ) -> PinholeIntrinsics:
    """Square pixels, principal point at the image centre, the given horizontal FOV."""
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return PinholeIntrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, int(width),
                             int(height))


def synthetic_depth(rgb: np.ndarray) -> SyntheticDepth:
    """(H, W, 3) uint8 RGB -> the synthetic scene's depth and intrinsics (deterministic)."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or \
            rgb.dtype != np.uint8:
        raise ValueError(f"synthetic_depth: expected (H, W, 3) uint8, got "
                         f"{getattr(rgb, 'shape', type(rgb).__name__)}")
    h, w = rgb.shape[:2]
    intr = synthetic_intrinsics(w, h)
    v = np.arange(h, dtype=np.float64)[:, None]
    below = v - intr.cy
    with np.errstate(divide="ignore"):
        floor = np.where(below > 0, CAMERA_HEIGHT_M * intr.fy / np.maximum(below, 1e-9), np.inf)
    z = np.broadcast_to(np.minimum(floor, WALL_M), (h, w)).copy()

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32) / 255.0
    k = max(3, (min(h, w) // 32) | 1)  # odd blur size ~3% of the image
    sat = cv2.GaussianBlur(hsv[..., 1], (k, k), 0)
    obj = sat > 0.4
    z = np.where(obj, np.minimum(z, 2.5 - (np.clip(sat, 0.4, 1.0) - 0.4) / 0.6), z)

    mm = np.round(z * 1000.0).astype(np.uint16)
    mm[:, : max(1, round(0.04 * w))] = 0
    mm[(hsv[..., 2] > 0.97) & (hsv[..., 1] < 0.08)] = 0
    return SyntheticDepth(mm, intr)
