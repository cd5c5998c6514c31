"""A frame's instances: the connected regions of each class present in the label image.

Rules (doc/objects.md repeats them for users):

* Connectivity: 8 (`CONNECTIVITY`): pixels touching at a corner belong to one region, so a
  thin diagonal object is not cut into pieces.
* Label 0 (background / unlabelled) is never an instance.
* An instance is kept when its area is at least ``min_area`` x the image's pixels (at least 1
  pixel), so one setting holds at any resolution.
* With ``close_gaps_px`` > 0 each class's mask is closed first (dilate then erode with a disc
  of that radius) and the regions are found on the closed mask; an instance is then the
  pixels OF ITS CLASS inside one closed region (the closing only decides what belongs
  together, it never adds pixels), so its mask can be several pieces of the label image. Its
  area, score and box are those of its own pixels.
* Order: by class id, then by the instance's first pixel in raster order (row, then column).
  Instance k (1-based) is the value k in the instance image `ids`.
* Box: (x0, y0, x1, y1) in pixels, x0/y0 the first column/row of the mask and x1/y1 one past
  the last (half-open, so width = x1 - x0). In continuous image coordinates where pixel (u, v)
  covers [u, u+1) x [v, v+1) (COCO's and Ultralytics' convention) the box is exactly
  [x0, x1) x [y0, y1): centre ((x0 + x1) / 2, (y0 + y1) / 2), size (x1 - x0, y1 - y0).
* Score: the mean confidence over the instance's pixels.

Cost: one bincount over the labels finds the classes present; then per class present one
mask, one connected-components pass and a few bincounts, each over that class's bounding
rectangle only. The vocabulary's size never enters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np
from scipy import ndimage

CONNECTIVITY = 8
MAX_INSTANCES = 65535  # the instance image is 16-bit


class InstanceError(ValueError):
    """Malformed input to `find_instances` (the message says what is expected)."""


@dataclass(frozen=True)
class Instance:
    """One instance of a frame (see the module docstring for the conventions)."""

    index: int  # k: its value in the instance image, 1-based
    class_id: int
    name: str
    score: float  # mean confidence over its pixels
    area: int  # pixels
    box: tuple[int, int, int, int]  # x0, y0, x1, y1: half-open

    @property
    def bbox_xywh(self) -> tuple[int, int, int, int]:
        """COCO's [x, y, width, height]."""
        x0, y0, x1, y1 = self.box
        return x0, y0, x1 - x0, y1 - y0

    @property
    def center(self) -> tuple[float, float]:
        """Box centre in continuous pixel coordinates (pixel u covers [u, u+1))."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0


@dataclass(frozen=True)
class FrameInstances:
    """Every instance of one frame.

    ids: (H, W) uint16 instance image, 0 = no instance, k = ``instances[k - 1]``.
    vocabulary: the class names of the frame's vocabulary (all of them, present or not),
    sorted; trackers use it to end the tracks of names that left the vocabulary.
    """

    ids: np.ndarray
    instances: tuple[Instance, ...]
    vocabulary: tuple[str, ...] = ()
    _boxes: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.ids.shape[0]), int(self.ids.shape[1])

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) int64 boxes (x0, y0, x1, y1), row k-1 for instance k."""
        if self._boxes is None:
            arr = np.array([i.box for i in self.instances], np.int64).reshape(-1, 4)
            object.__setattr__(self, "_boxes", arr)
        return self._boxes

    def mask(self, k: int) -> np.ndarray:
        """(H, W) bool mask of instance k (1-based)."""
        return self.ids == k

    def crop(self, k: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """(box, (y1 - y0, x1 - x0) bool mask inside the box) of instance k: its mask
        without touching the rest of the image."""
        box = self.instances[k - 1].box
        x0, y0, x1, y1 = box
        return box, self.ids[y0:y1, x0:x1] == k


@cache
def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _check(labels: np.ndarray, confidence: np.ndarray) -> None:
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype not in (
            np.uint8, np.uint16):
        got = f"{labels.shape} {labels.dtype}" if isinstance(labels, np.ndarray) else labels
        raise InstanceError(f"labels must be a (H, W) uint8 or uint16 array, got {got}")
    if not isinstance(confidence, np.ndarray) or confidence.shape != labels.shape:
        got = getattr(confidence, "shape", type(confidence).__name__)
        raise InstanceError(f"confidence must be a float array of the labels' shape "
                            f"{labels.shape}, got {got}")


def min_area_pixels(min_area: float, height: int, width: int) -> int:
    """The smallest kept area in pixels for a fraction `min_area` of an image (>= 1)."""
    return max(1, int(np.ceil(min_area * height * width - 1e-9)))


@dataclass
class _Found:
    """One kept region while the frame's order is not yet known."""

    class_id: int
    first: tuple[int, int]  # (row, column) of its first pixel in raster order
    box: tuple[int, int, int, int]
    area: int
    group: int  # which class rectangle (`_Class`) it lies in
    label: int  # its value in that rectangle's component image


@dataclass
class _Class:
    """A class's rectangle in the image, its pixels there and their component image."""

    rows: slice
    cols: slice
    own: np.ndarray
    components: np.ndarray
    count: int = 0  # components in it


def find_instances(labels: np.ndarray, confidence: np.ndarray, names: Mapping[int, str],
                   min_area: float = 0.001, close_gaps_px: int = 0) -> FrameInstances:
    """Instances of a label image (see the module docstring).

    labels: (H, W) uint8/uint16 class ids, 0 = none. confidence: (H, W) float, the confidence
    of each pixel's class. names: {class id: name} of the frame's vocabulary (ids without a
    name are called "class <id>"). min_area: fraction of H x W. close_gaps_px: closing radius
    in pixels, 0 = off. Raises InstanceError for malformed input or more than 65535
    instances (raise min_area)."""
    _check(labels, confidence)
    h, w = labels.shape
    smallest = min_area_pixels(min_area, h, w)
    present = np.flatnonzero(np.bincount(labels.ravel()))
    present = present[present > 0]
    rects = ndimage.find_objects(labels, max_label=int(present[-1])) if present.size else []
    found: list[_Found] = []
    groups: list[_Class] = []
    for cid in present.tolist():
        rows, cols = rects[cid - 1]
        group = _Class(rows, cols, labels[rows, cols] == cid, np.empty(0))
        kept = _regions(cid, group, len(groups), smallest, int(close_gaps_px))
        if kept:
            found += kept
            groups.append(group)
    if len(found) > MAX_INSTANCES:
        raise InstanceError(f"{len(found)} instances exceed the instance image's "
                            f"{MAX_INSTANCES}: raise object_min_area")
    found.sort(key=lambda f: (f.class_id, f.first))
    ids = np.zeros((h, w), np.uint16)
    luts = [np.zeros(g.count + 1, np.uint16) for g in groups]
    for k, f in enumerate(found, start=1):
        luts[f.group][f.label] = k
    for g, lut in zip(groups, luts, strict=True):
        ids[g.rows, g.cols][g.own] = lut[g.components[g.own]]
    score = np.bincount(ids.ravel(), weights=confidence.ravel(), minlength=len(found) + 1)
    instances = tuple(
        Instance(k, f.class_id, str(names.get(f.class_id, f"class {f.class_id}")),
                 float(score[k] / f.area), f.area, f.box) for k, f in enumerate(found, start=1))
    return FrameInstances(ids, instances, tuple(sorted({str(n) for n in names.values()})))


def _regions(cid: int, group: _Class, index: int, smallest: int, radius: int) -> list[_Found]:
    """The kept regions of one class inside its rectangle; fills group.components."""
    own = group.own
    r0, c0 = group.rows.start, group.cols.start
    # connectedComponents + bincount + find_objects: connectedComponentsWithStats measured
    # about 10 times slower than the three together on 640x480 masks.
    comp, n = _components(own, radius)
    if radius:
        comp[~own] = 0  # a closed region keeps only its class's pixels
    area = np.bincount(comp.ravel(), minlength=n + 1)
    spans = ndimage.find_objects(comp, max_label=n)
    group.components, group.count = comp, n
    out = []
    for lab in (np.flatnonzero(area[1:n + 1] >= smallest) + 1).tolist():
        sy, sx = spans[lab - 1]
        x0, y0, x1, y1 = sx.start, sy.start, sx.stop, sy.stop
        first = int(np.argmax(comp[y0, x0:x1] == lab)) + x0  # the first pixel of its top row
        out.append(_Found(cid, (y0 + r0, first + c0), (x0 + c0, y0 + r0, x1 + c0, y1 + r0),
                          int(area[lab]), index, lab))
    return out


def _components(own: np.ndarray, radius: int) -> tuple[np.ndarray, int]:
    """(component image int32, count) of a class's mask, closed first when radius > 0."""
    work = own.view(np.uint8)
    if radius:
        pad = radius + 1  # zeros around: the closing sees the image's true surroundings
        padded = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, _disc(radius))
        work = np.ascontiguousarray(closed[pad:-pad, pad:-pad])
    n, comp = cv2.connectedComponents(work, connectivity=CONNECTIVITY, ltype=cv2.CV_32S)
    return comp, n - 1
