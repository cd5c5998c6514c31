"""The console's frames, ROS-free: one camera's outputs joined by stamp into a `Frame`, and the
binary packet the page receives for it.

The node publishes a frame's outputs one after the other with the input's header (labels,
overlay when watched, the segmentation summary last). `CameraFrames` joins those of one stamp;
a frame is complete with its labels and summary (and its overlay while the overlay is
wanted). Only the newest complete frame matters: older stamps still waiting for a part are
dropped, and at most `PENDING` stamps wait, so nothing queues.

Packet (one WebSocket binary message): b"OVSG", the header's length (uint32, little endian),
the header (UTF-8 JSON), then the parts' bytes in the header's order:
- labels: the label image, row-major, uint8 ("u8") or little-endian uint16 ("u16"),
  zlib-compressed (the browser's DecompressionStream("deflate") reads it);
- overlay: the node's ~/overlay as JPEG (only for pages that show it).
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = b"OVSG"
PENDING = 8  # stamps waiting for their other parts, per camera
JPEG_QUALITY = 85
Stamp = tuple[int, int]  # (sec, nanosec)


@dataclass
class Frame:
    """One segmented frame of one camera, as the page gets it.

    labels: (H, W) uint8 or uint16 label ids; overlay: (H, W, 3) uint8 RGB or None;
    summary: the ~/segmentation summary (`summary_dict`)."""

    camera: str
    stamp: Stamp
    frame_id: str
    labels: np.ndarray
    summary: dict[str, Any]
    overlay: np.ndarray | None = None
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


class CameraFrames:
    """Joins one camera's parts by stamp (module docstring); thread-safe."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.want_overlay = False
        self._pending: dict[Stamp, dict[str, Any]] = {}
        self._newest: Stamp = (-1, 0)
        self._lock = threading.Lock()

    def add(self, part: str, stamp: Stamp, frame_id: str, value: Any) -> Frame | None:
        """Add one part ("labels", "overlay" or "summary"); the frame when this completed it
        (and it is newer than every frame completed before), else None."""
        with self._lock:
            if stamp <= self._newest:
                return None  # a part of a frame already shown or overtaken
            parts = self._pending.setdefault(stamp, {"frame_id": frame_id})
            parts[part] = value
            if len(self._pending) > PENDING:
                del self._pending[min(self._pending)]
            need = ("labels", "summary") + (("overlay",) if self.want_overlay else ())
            if not all(n in parts for n in need):
                return None
            for old in [s for s in self._pending if s <= stamp]:
                del self._pending[old]
            self._newest = stamp
        return Frame(self.camera, stamp, parts["frame_id"], parts["labels"], parts["summary"],
                     parts.get("overlay"))
