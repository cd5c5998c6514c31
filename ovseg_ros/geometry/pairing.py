"""Pairing colour frames with registered depth by stamp, without queues (latest frame wins).

One ``DepthPairing`` per camera. It keeps the last ``history`` depth messages and
camera_infos, nothing more. A colour frame opens a ``PairRequest`` when it arrives; depth
that arrives later (drivers often publish it a few ms after colour) still improves the
request's candidate until it is closed, so the node opens at arrival and closes when it
builds the cloud. A frame dropped by the latest-frame-wins slot is simply never closed; at
most ``history`` requests stay open, the oldest falling out (and then no longer updated).

Matching: the depth whose stamp is nearest the colour stamp, within ``slop_s`` (exact stamps
are offset 0), with the colour image's frame_id. The camera_info is the one whose stamp is
nearest the colour stamp (no slop: a driver that publishes it once, or with stamp 0, still
pairs), so a stream whose resolution changes (a replay of mixed-size images, a driver
reconfigured at run time) never pairs a frame with another frame's intrinsics while the
worker lags behind the newest messages. Depth or camera_info in another frame is refused:
this package projects depth registered to the colour camera only.

Payloads (the depth message, the intrinsics) are opaque here: no ROS types, no decoding.
"""

from __future__ import annotations

import collections
import enum
import math
import statistics
import threading
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SLOP_S = 0.05
REGISTER_HINT = ("register the depth to the colour camera (depth_image_proc's "
                 "register node, or the driver's aligned depth, e.g. RealSense "
                 "align_depth.enable)")


class MissReason(str, enum.Enum):
    """Why a colour frame got no cloud."""

    NO_DEPTH = "no_depth"  # no depth image received yet
    NO_CAMERA_INFO = "no_camera_info"  # no (valid) camera_info received yet
    FRAME_ID = "frame_id_mismatch"  # depth or camera_info in another frame than the colour
    STAMP_OFFSET = "stamp_offset"  # nearest depth further than slop_s from the colour stamp


@dataclass(frozen=True)
class Paired:
    """A match: the depth payload, the camera_info payload, and depth stamp - colour stamp."""

    depth: Any
    info: Any
    offset_s: float


@dataclass(frozen=True)
class Miss:
    """No match, with the reason and a sentence for the user."""

    reason: MissReason
    message: str
    offset_s: float | None = None  # nearest depth stamp - colour stamp, when any depth was seen


@dataclass
class PairRequest:
    """A colour frame waiting for its depth (returned by ``DepthPairing.open``)."""

    stamp_s: float
    frame_id: str
    best: tuple[float, float, Any] | None = None  # (|offset|, offset, depth): within slop
    nearest: tuple[float, float] | None = None  # (|offset|, offset) of the nearest depth
    other_frame: str | None = None  # frame_id of depth seen in another frame, if any
    info: tuple[float, str, Any] | None = None  # (|offset|, frame_id, payload): nearest info
    closed: bool = False


@dataclass(frozen=True)
class PairingStats:
    """Counters for /diagnostics: closed frames, pairs, misses per reason, the last miss and
    the typical (median over the last ``window`` frames) |stamp offset| of the nearest depth."""

    frames: int
    paired: int
    misses: dict[str, int]
    last_miss: str
    typical_offset_s: float | None
    slop_s: float
    depth_received: int = 0  # depth messages added since start
    info_received: int = 0  # valid camera_info messages added since start

    @property
    def rate(self) -> float:
        return self.paired / self.frames if self.frames else 0.0

    def values(self) -> list[tuple[str, str]]:
        """(key, value) strings, ready for DiagnosticStatus.values."""
        typical = "n/a" if self.typical_offset_s is None else f"{self.typical_offset_s:.4f}"
        out = [("depth_pairing_rate", f"{self.rate:.3f}"),
               ("depth_frames_received", str(self.depth_received)),
               ("camera_info_received", str(self.info_received)),
               ("depth_frames_paired", str(self.paired)),
               ("depth_frames_unpaired", str(self.frames - self.paired)),
               ("depth_typical_stamp_offset_s", typical),
               ("depth_slop_s", f"{self.slop_s:g}")]
        out += [(f"depth_miss_{r.value}", str(self.misses.get(r.value, 0))) for r in MissReason]
        if self.last_miss:
            out.append(("depth_last_miss", self.last_miss))
        return out


@dataclass
class _Counters:
    frames: int = 0
    paired: int = 0
    misses: collections.Counter = field(default_factory=collections.Counter)
    last_miss: str = ""
    depth: int = 0
    info: int = 0


class DepthPairing:
    """Stamp pairing for one camera; thread-safe (subscriptions add, the worker closes)."""

    def __init__(self, slop_s: float = DEFAULT_SLOP_S, history: int = 4, window: int = 100):
        if not (math.isfinite(slop_s) and slop_s >= 0):
            raise ValueError(f"slop_s must be a finite number >= 0, got {slop_s}")
        if history < 1 or window < 1:
            raise ValueError(f"history and window must be >= 1, got {history}, {window}")
        self.slop_s = float(slop_s)
        self._lock = threading.Lock()
        self._depth: collections.deque = collections.deque(maxlen=int(history))
        self._open: collections.deque = collections.deque(maxlen=int(history))
        self._infos: collections.deque = collections.deque(maxlen=int(history))
        self._info_error = ""
        self._offsets: collections.deque = collections.deque(maxlen=int(window))
        self._count = _Counters()

    # -- inputs (subscription callbacks) ---------------------------------------------------

    def add_depth(self, stamp_s: float, frame_id: str, depth: Any) -> None:
        """A depth message arrived (``depth`` is kept as given, e.g. the message)."""
        entry = (float(stamp_s), str(frame_id), depth)
        with self._lock:
            self._depth.append(entry)
            self._count.depth += 1
            for req in self._open:
                self._offer(req, entry)

    def add_info(self, stamp_s: float, frame_id: str, info: Any) -> None:
        """A valid camera_info arrived (``info``: e.g. its PinholeIntrinsics)."""
        entry = (float(stamp_s), str(frame_id), info)
        with self._lock:
            self._infos.append(entry)
            self._count.info += 1
            self._info_error = ""
            for req in self._open:
                self._offer_info(req, entry)

    def refuse_info(self, reason: str) -> None:
        """A camera_info was refused (e.g. a CameraInfoError); reported while none is valid."""
        with self._lock:
            self._info_error = str(reason)

    # -- frames (image callback opens, worker closes) ----------------------------------------

    def open(self, stamp_s: float, frame_id: str) -> PairRequest:
        """Start looking for the depth of a colour frame (stamp in seconds)."""
        req = PairRequest(float(stamp_s), str(frame_id))
        with self._lock:
            for entry in self._depth:
                self._offer(req, entry)
            for entry in self._infos:
                self._offer_info(req, entry)
            self._open.append(req)
        return req

    def close(self, req: PairRequest) -> Paired | Miss:
        """The result for a frame; counted in the statistics. Closing twice is an error."""
        with self._lock:
            if req.closed:
                raise ValueError("this PairRequest was closed already")
            req.closed = True
            try:
                self._open.remove(req)
            except ValueError:
                pass  # fell out of the bounded list; its candidate is still valid
            result = self._decide(req)
            c = self._count
            c.frames += 1
            if req.nearest is not None:
                self._offsets.append(req.nearest[0])
            if isinstance(result, Paired):
                c.paired += 1
            else:
                c.misses[result.reason.value] += 1
                c.last_miss = result.message
            return result

    def match(self, stamp_s: float, frame_id: str) -> Paired | Miss:
        """open + close at once: pair against the depth received so far."""
        return self.close(self.open(stamp_s, frame_id))

    def stats(self) -> PairingStats:
        with self._lock:
            c = self._count
            typical = statistics.median(self._offsets) if self._offsets else None
            return PairingStats(c.frames, c.paired, dict(c.misses), c.last_miss, typical,
                                self.slop_s, c.depth, c.info)

    # -- internals (under the lock) ----------------------------------------------------------

    def _offer(self, req: PairRequest, entry: tuple[float, str, Any]) -> None:
        stamp, frame_id, depth = entry
        if frame_id != req.frame_id:
            req.other_frame = frame_id
            return
        offset = stamp - req.stamp_s
        gap = abs(offset)
        if req.nearest is None or gap < req.nearest[0]:
            req.nearest = (gap, offset)
        if gap <= self.slop_s + 1e-9 and (req.best is None or gap < req.best[0]):
            req.best = (gap, offset, depth)

    @staticmethod
    def _offer_info(req: PairRequest, entry: tuple[float, str, Any]) -> None:
        stamp, frame_id, info = entry
        gap = abs(stamp - req.stamp_s)
        if req.info is None or gap <= req.info[0]:
            req.info = (gap, frame_id, info)  # ties: the newer one

    def _decide(self, req: PairRequest) -> Paired | Miss:
        for entry in self._infos:  # a request that fell out of the open list saw none later
            self._offer_info(req, entry)
        nearest = None if req.nearest is None else req.nearest[1]
        if req.nearest is None and req.other_frame is None:
            return Miss(MissReason.NO_DEPTH, "no depth image received yet: check the 'depth' "
                        "remap and that the driver publishes registered depth")
        if req.info is None:
            why = f" (last one refused: {self._info_error})" if self._info_error else ""
            return Miss(MissReason.NO_CAMERA_INFO, "no valid camera_info received yet" + why
                        + ": check the 'camera_info' remap", nearest)
        _, info_frame, info = req.info
        if info_frame != req.frame_id:
            return Miss(MissReason.FRAME_ID, f"camera_info frame_id {info_frame!r} differs from "
                        f"the colour image's {req.frame_id!r}: use the colour camera's "
                        f"camera_info and {REGISTER_HINT}", nearest)
        if req.best is not None:
            return Paired(req.best[2], info, req.best[1])
        if req.nearest is None:
            return Miss(MissReason.FRAME_ID, f"depth frame_id {req.other_frame!r} differs from "
                        f"the colour image's {req.frame_id!r}: {REGISTER_HINT}")
        return Miss(MissReason.STAMP_OFFSET, f"nearest depth is {nearest:+.3f} s from the colour "
                    f"stamp, more than depth_slop_s={self.slop_s:g}: raise depth_slop_s or "
                    "synchronise the streams (e.g. the driver's sync option)", nearest)
