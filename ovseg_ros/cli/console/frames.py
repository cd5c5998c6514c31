"""The console's frames, ROS-free: one camera's outputs joined by stamp into a `Frame`, and the
binary packet the page receives for it.

The node publishes a frame's outputs one after the other with the input's header (labels,
overlay when watched, the detections with objects on, the segmentation summary last).
`CameraFrames` joins those of one stamp; a frame is complete with its labels and summary (and
its overlay while the overlay is wanted). Only the newest complete frame matters: older stamps
still waiting for a part are dropped, and at most `PENDING` stamps wait, so nothing queues.

Boxes never belong to another frame: a frame carries only the detections of its own stamp.
While the node publishes detections (`want_detections`), a frame otherwise complete waits for
them up to `HOLD_S`; then it goes without boxes, marked "late" (`expire`). Detections that
come after their frame went are dropped with it.

Packet (one WebSocket binary message): b"OVSG", the header's length (uint32, little endian),
the header (UTF-8 JSON), then the parts' bytes in the header's order:
- labels: the label image, row-major, uint8 ("u8") or little-endian uint16 ("u16"),
  zlib-compressed (the browser's DecompressionStream("deflate") reads it);
- overlay: the node's ~/overlay as JPEG (only for pages that show it).
The header's `detections` says whether the frame's detections came ("received", "late" or
"unavailable": the node publishes none) and `boxes` lists them ("received" only, else null).
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"OVSG"
PENDING = 8  # stamps waiting for their other parts, per camera
JPEG_QUALITY = 85
HOLD_S = 0.25  # how long a frame otherwise complete waits for its detections
Stamp = tuple[int, int]  # (sec, nanosec)


@dataclass
class Frame:
    """One segmented frame of one camera, as the page gets it.

    labels: (H, W) uint8 or uint16 label ids; overlay: (H, W, 3) uint8 RGB or None;
    summary: the ~/segmentation summary (`summary_dict`); boxes: the frame's detections
    (`label_boxes`) when `detections` is "received", else None."""

    camera: str
    stamp: Stamp
    frame_id: str
    labels: np.ndarray
    summary: dict[str, Any]
    overlay: np.ndarray | None = None
    boxes: list[dict[str, Any]] | None = None
    detections: str = "unavailable"  # "received", "late" (not in time) or "unavailable"
    seq: int = 0  # set by the hub: increasing per camera
    _packets: dict[str, bytes] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def seconds(self) -> float:
        return self.stamp[0] + self.stamp[1] * 1e-9

    def packet(self, overlay: bool) -> bytes:
        """The binary message (module docstring), with the overlay when asked and present;
        built once per kind (thread-safe; JPEG and zlib release the GIL)."""
        kind = "overlay" if overlay and self.overlay is not None else "labels"
        with self._lock:
            if kind not in self._packets:
                self._packets[kind] = encode_packet(self, kind == "overlay")
            return self._packets[kind]


def encode_packet(frame: Frame, with_overlay: bool) -> bytes:
    labels = frame.labels
    wide = labels.dtype.itemsize > 1
    raw = labels.astype("<u2" if wide else np.uint8, copy=False)
    parts = [("labels", zlib.compress(np.ascontiguousarray(raw).tobytes(), 1),
              {"encoding": "u16" if wide else "u8"})]
    if with_overlay and frame.overlay is not None:
        parts.append(("overlay", jpeg(frame.overlay), {"mime": "image/jpeg"}))
    header = {
        "type": "frame", "camera": frame.camera, "seq": frame.seq,
        "stamp": {"sec": frame.stamp[0], "nanosec": frame.stamp[1]},
        "frame_id": frame.frame_id, "width": int(labels.shape[1]),
        "height": int(labels.shape[0]), "summary": frame.summary,
        "detections": frame.detections, "boxes": frame.boxes,
        "parts": [{"name": name, "bytes": len(data), **extra} for name, data, extra in parts],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([MAGIC, struct.pack("<I", len(head)), head] + [d for _, d, _ in parts])


def decode_packet(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The header and the parts by name (the page's reading, for tests and tools)."""
    if data[:4] != MAGIC:
        raise ValueError("not a console frame packet")
    (size,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8:8 + size])
    parts, at = {}, 8 + size
    for part in header["parts"]:
        parts[part["name"]] = data[at:at + part["bytes"]]
        at += part["bytes"]
    return header, parts


def jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def quantise(relevance: np.ndarray) -> bytes:
    """(H, W) float relevance in [0, 1] -> zlib-compressed uint8 0..255 (a heatmap's bytes)."""
    q = np.clip(np.nan_to_num(relevance, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return zlib.compress(q.tobytes(), 1)


def label_boxes(boxes: list[dict[str, Any]], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The boxes, each with the label id of its class name in the frame's own vocabulary
    (`label`: the summary's id for that name, None for a name it does not hold), which gives
    the box its class's colour in the page."""
    ids = {c["name"]: c["id"] for c in summary.get("classes", ())}
    return [{**box, "label": ids.get(box["name"])} for box in boxes]


class CameraFrames:
    """Joins one camera's parts by stamp (module docstring); thread-safe."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.want_overlay = False
        self.want_detections = False  # the node publishes detections and they reach us
        self._pending: dict[Stamp, dict[str, Any]] = {}
        self._held: dict[Stamp, float] = {}  # complete but for the detections: since when
        self._newest: Stamp = (-1, 0)
        self._lock = threading.Lock()

    def add(self, part: str, stamp: Stamp, frame_id: str, value: Any,
            now: float | None = None) -> Frame | None:
        """Add one part ("labels", "overlay", "summary" or "detections": a list of boxes);
        the frame when this completed it (and it is newer than every frame completed
        before), else None. `now`: the monotonic time (a frame's hold starts then)."""
        with self._lock:
            if stamp <= self._newest:
                return None  # a part of a frame already shown or overtaken
            parts = self._pending.setdefault(stamp, {"frame_id": frame_id})
            parts[part] = value
            if len(self._pending) > PENDING:
                oldest = min(self._pending)
                del self._pending[oldest]
                self._held.pop(oldest, None)
                if oldest == stamp:
                    return None
            need = ("labels", "summary") + (("overlay",) if self.want_overlay else ())
            if not all(n in parts for n in need):
                return None
            if self.want_detections and "detections" not in parts:
                self._held.setdefault(stamp, time.monotonic() if now is None else now)
                return None
            return self._finish(stamp)

    def expire(self, now: float | None = None) -> Frame | None:
        """The newest frame that waited `HOLD_S` for its detections in vain (or no longer
        waits: the node stopped publishing them), without boxes; None when none is due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [s for s, since in self._held.items()
                   if not self.want_detections or now - since >= HOLD_S]
            return self._finish(max(due)) if due else None

    def _finish(self, stamp: Stamp) -> Frame:
        """The frame of `stamp`; it and every older stamp leave the pending ones."""
        parts = self._pending[stamp]
        for old in [s for s in self._pending if s <= stamp]:
            del self._pending[old]
            self._held.pop(old, None)
        self._newest = stamp
        boxes = parts.get("detections")
        if boxes is not None:
            state, boxes = "received", label_boxes(boxes, parts["summary"])
        else:
            state = "late" if self.want_detections else "unavailable"
        return Frame(self.camera, stamp, parts["frame_id"], parts["labels"], parts["summary"],
                     parts.get("overlay"), boxes, state)
