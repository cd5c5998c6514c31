"""Generated label-image sequences with ground-truth object ids, for the tracking benchmark.

A scene is what a segmenter would hand the instance stage: label images (0 = background) and
a confidence image, plus for every frame which object each pixel shows. Everything follows
from the seed (numpy's PCG64), so a sequence, and the scores measured on it, are the same on
every machine.

What moves (image W x H, default 640 x 480, `fps` frames per second of stamps):

* lane movers: shapes (ellipses, rectangles) of a few classes gliding left and right in
  horizontal lanes and bouncing at the image's edges, with a small vertical wobble. Two objects
  of one class share a class but never a neighbouring lane, so they never touch (two touching
  regions of one class are one region of the label image: the instance stage cannot tell
  them apart, and `same_class_crossings` measures that case separately);
* crossers: shapes of other classes moving up and down across the lanes, in front of the lane
  movers and wider than them: they hide a mover partly or wholly as they cross;
* pillars: static full-height bands in front of everything, wider than the movers: a mover
  passing behind one is hidden for up to about 0.6 s, then comes out on the other side;
* segmentation noise: each shape's size jitters by a pixel or two per frame, small holes of
  another class open inside objects, specks of random classes appear (below the minimum area)
  and, rarely, a blob large enough to be an object flickers for a frame or two.

Ground truth: an object is in a frame when at least `min_area` of the image's pixels show it
(its box is the box of those pixels); noise blobs are no objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CLASSES = {1: "cup", 2: "chair", 3: "bottle", 4: "person", 5: "ball", 6: "pillar", 7: "box"}


@dataclass
class _Shape:
    gid: int  # ground-truth id
    class_id: int
    kind: str  # "ellipse" or "rect"
    w: float
    h: float
    x: float  # centre
    y: float
    vx: float
    vy: float
    z: int  # drawing order: higher in front
    wobble: float = 0.0  # amplitude of a vertical sine (lane movers)
    phase: float = 0.0
    base_y: float = 0.0


@dataclass
class Frame:
    """One generated frame: labels (H, W) uint16, confidence (H, W) float32, owner (H, W)
    int32 ground-truth id per pixel (0 = none or noise), stamp in seconds, and the ground
    truth: {gt id: (x0, y0, x1, y1)} of the objects in the frame (half-open boxes)."""

    index: int
    stamp: float
    labels: np.ndarray
    confidence: np.ndarray
    owner: np.ndarray
    truth: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class SceneSpec:
    width: int = 640
    height: int = 480
    frames: int = 300
    fps: float = 10.0
    lanes: int = 5
    crossers: int = 2
    pillars: int = 2
    same_class_crossings: bool = False  # two objects of one class cross paths (hard case)
    min_area: float = 0.001
    seed: int = 0


def _shapes(spec: SceneSpec, rng: np.random.Generator) -> list[_Shape]:
    w, h = spec.width, spec.height
    s = min(w, h) / 480.0  # sizes and speeds scale with the image
    shapes: list[_Shape] = []
    gid = 1
    lane_h = h / spec.lanes
    lane_classes = [1, 2, 1, 3, 7, 2, 3][:spec.lanes]  # equal classes never in adjacent lanes
    for lane, cid in enumerate(lane_classes):
        sw, sh = rng.uniform(40, 50) * s, rng.uniform(0.45, 0.6) * lane_h
        x = rng.uniform(sw, w - sw)
        speed = rng.uniform(4.0, 7.0) * s * rng.choice([-1.0, 1.0])
        y = (lane + 0.5) * lane_h
        shapes.append(_Shape(gid, cid, "ellipse" if lane % 2 else "rect", sw, sh, x, y, speed,
                             0.0, 1, wobble=0.08 * lane_h, phase=rng.uniform(0, 2 * np.pi),
                             base_y=y))
        gid += 1
    for k in range(spec.crossers):
        cw, ch = rng.uniform(60, 70) * s, rng.uniform(60, 80) * s
        x = (0.5, 0.1, 0.9)[k % 3] * w + rng.uniform(-0.02, 0.02) * w
        shapes.append(_Shape(gid, 4 + k % 2, "rect" if k % 2 else "ellipse", cw, ch, x,
                             rng.uniform(ch, h - ch), 0.0,
                             rng.uniform(4.0, 7.0) * s * rng.choice([-1.0, 1.0]), 2))
        gid += 1
    for k in range(spec.pillars):
        pw = rng.uniform(55, 65) * s
        x = (0.3, 0.7)[k % 2] * w + rng.uniform(-0.02, 0.02) * w
        shapes.append(_Shape(gid, 6, "rect", pw, 2.0 * h, x, h / 2.0, 0.0, 0.0, 3))
        gid += 1
    if spec.same_class_crossings:  # a second cup crossing the lanes, in front of the movers
        shapes.append(_Shape(gid, 1, "ellipse", 45 * s, 45 * s, 0.15 * w, 0.2 * h, 0.0,
                             5.0 * s, 2))
    return shapes


def _move(shape: _Shape, t: int, w: int, h: int) -> None:
    for axis, size, limit in (("x", shape.w, w), ("y", shape.h, h)):
        vel = "v" + axis
        pos = getattr(shape, axis) + getattr(shape, vel)
        half = size / 2.0
        if pos - half < 0 or pos + half > limit:
            setattr(shape, vel, -getattr(shape, vel))
            pos = min(max(pos, half), limit - half)
        setattr(shape, axis, pos)
    if shape.wobble:
        shape.y = shape.base_y + shape.wobble * np.sin(0.15 * t + shape.phase)


def _draw(img: np.ndarray, shape: _Shape, value: int, jitter: float) -> None:
    cx, cy = int(round(shape.x)), int(round(shape.y))
    hw, hh = max(int(round(shape.w / 2 + jitter)), 1), max(int(round(shape.h / 2 + jitter)), 1)
    if shape.kind == "ellipse":
        cv2.ellipse(img, (cx, cy), (hw, hh), 0, 0, 360, value, -1)
    else:
        cv2.rectangle(img, (cx - hw, cy - hh), (cx + hw - 1, cy + hh - 1), value, -1)


def generate(spec: SceneSpec = SceneSpec()) -> list[Frame]:
    """The sequence of `spec` (deterministic from `spec.seed`)."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.width, spec.height
    shapes = _shapes(spec, rng)
    smallest = max(1, int(np.ceil(spec.min_area * w * h)))
    frames = []
    for t in range(spec.frames):
        owner = np.zeros((h, w), np.int32)
        for shape in sorted(shapes, key=lambda s: (s.z, s.gid)):
            _move(shape, t, w, h)
            _draw(owner, shape, shape.gid, rng.uniform(-1.5, 1.5))
        class_of = np.zeros(len(shapes) + 2, np.uint16)
        for shape in shapes:
            class_of[shape.gid] = shape.class_id
        labels = class_of[owner]
        _noise(labels, owner, rng, smallest)
        truth = {}
        counts = np.bincount(owner.ravel(), minlength=len(shapes) + 1)
        for gid in np.flatnonzero(counts[1:] >= smallest) + 1:
            ys, xs = np.nonzero(owner == gid)
            truth[int(gid)] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        conf = np.where(labels > 0, 0.6 + 0.3 * rng.random((h, w)), 0.5).astype(np.float32)
        frames.append(Frame(t, (t + 1) / spec.fps, labels, conf, owner, truth))
    return frames


def _noise(labels: np.ndarray, owner: np.ndarray, rng: np.random.Generator,
           smallest: int) -> None:
    """Holes, specks and a rare flickering blob, written into labels (owner loses the
    pixels a hole or blob covers: they no longer show the object)."""
    h, w = labels.shape
    for _ in range(rng.integers(0, 4)):  # holes inside objects
        ys, xs = np.nonzero(owner[::8, ::8])
        if ys.size == 0:
            break
        i = rng.integers(ys.size)
        r = int(rng.integers(2, 4))
        y, x = int(ys[i]) * 8, int(xs[i]) * 8
        hole = np.zeros((h, w), np.uint8)
        cv2.circle(hole, (x, y), r, 1, -1)
        hole = hole.astype(bool)
        labels[hole] = rng.integers(1, len(CLASSES) + 1)
        owner[hole] = 0
    for _ in range(rng.integers(0, 6)):  # specks below the minimum area
        r = int(rng.integers(1, max(2, int(np.sqrt(smallest / np.pi)) - 1)))
        x, y = int(rng.integers(w)), int(rng.integers(h))
        speck = np.zeros((h, w), np.uint8)
        cv2.circle(speck, (x, y), r, 1, -1)
        labels[speck.astype(bool)] = rng.integers(1, len(CLASSES) + 1)
        owner[speck.astype(bool)] = 0
    if rng.random() < 0.03:  # a false object for one frame
        r = int(np.sqrt(3 * smallest / np.pi))
        x, y = int(rng.integers(r, w - r)), int(rng.integers(r, h - r))
        blob = np.zeros((h, w), np.uint8)
        cv2.circle(blob, (x, y), r, 1, -1)
        labels[blob.astype(bool)] = rng.integers(1, len(CLASSES) + 1)
        owner[blob.astype(bool)] = 0
