"""Track ids per camera: a frame's instances matched to the tracks of the frames before.

Matching, in two rounds, only ever between a track and an instance of the same class NAME:

1. overlap: the intersection over union of the instance's mask and the track's last mask moved
   by its predicted motion (constant velocity of the box centre); scipy's
   `linear_sum_assignment` maximises the total overlap, pairs below `min_iou` stay unmatched;
2. recovery, for the tracks and instances left: the distance from the instance's box centre to
   the track's predicted centre or to its last seen one (the smaller), in units of the track's
   size (the diagonal of the largest box it recently had), matched the same way when below
   `RECOVER_GATE`; a track seen in more than one frame goes before any track seen once (a
   one-frame flicker of the segmentation must not claim an object coming back). This round
   brings an object back after it was hidden: while it slides behind something its visible
   part shrinks and its visible centre slows down, so neither its last box nor its motion says
   well where it comes out; its full size and position do.

The motion is the box centre's, smoothed, and left as it was while the box changes size by more
than a fifth from one sighting to the next (the object is being covered or uncovered). An
unmatched instance starts a track with the next id of a counter that never goes back, so an id
is never given twice in a tracker's life.

Age: a track seen in a single frame so far ends as soon as the next frame does not match it (a
one-frame flicker of the segmentation is no object; as in ByteTrack, the tracks of the
tracker's first frame are exempt). Any other track that no instance matched ends when it was
last seen more than `max_age_s` seconds of frame stamps ago, or, for unstamped frames (a folder
of images) or with `max_age_s` = 0, more than `max_age_frames` processed frames ago. Until then
it can be matched again, which carries ids through dropped frames and short occlusions.
Seconds are what matters on a robot: an object hidden for a second moves a second's worth
whatever the frame rate, and counting frames would stretch the limit when the node drops
frames (a slow model sees fewer frames per second). Motion is predicted over the same clock.

Tracks are keyed by class name, not label id: after a vocabulary change the tracks of names that
stay go on (whatever their new ids), those of names that left end at once.

Deterministic: the same frames in the same order give the same ids (tracks in id order, ties
broken by order, no randomness, no set or hash order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .instances import FrameInstances

VELOCITY_SMOOTHING = 0.5  # weight of the newest measured velocity
SIZE_CHANGE = 0.2  # a box changing width or height by more than this fraction: no motion update
SIZE_MEMORY = 0.97  # the remembered size shrinks by this factor per sighting at most
RECOVER_GATE = 2.0  # recovery: farthest centre distance, in track sizes
_NO_MATCH = 1e6


@dataclass
class _Track:
    id: int
    name: str
    box: np.ndarray  # (4,) float64 x0, y0, x1, y1 when last seen
    mask: np.ndarray  # (y1 - y0, x1 - x0) bool, its mask inside that box
    velocity: np.ndarray  # (2,) box-centre motion per clock unit
    size: np.ndarray  # (2,) width, height it recently had at most (decaying)
    seen_frame: int  # processed-frame index when last seen
    seen_stamp: float | None  # its stamp (None: unstamped)
    born: int = 0  # processed-frame index of its first sighting
    hits: int = 1


def _valid_stamp(stamp: float | None) -> bool:
    return stamp is not None and math.isfinite(stamp) and stamp > 0


class Tracker:
    """Track ids for one camera's frames (see the module docstring). Not thread-safe: one
    caller at a time (the frame step's worker)."""

    def __init__(self, max_age_frames: int = 30, max_age_s: float = 2.0, min_iou: float = 0.1,
                 masks: bool = True) -> None:
        self.max_age_frames = int(max_age_frames)
        self.max_age_s = float(max_age_s)
        self.min_iou = float(min_iou)
        self.masks = bool(masks)  # False: box overlap only (measured against masks)
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._frame = -1

    def reconfigure(self, max_age_frames: int, max_age_s: float, min_iou: float) -> None:
        """New limits from the next frame on; the tracks stay."""
        self.max_age_frames, self.max_age_s = int(max_age_frames), float(max_age_s)
        self.min_iou = float(min_iou)

    @property
    def active(self) -> list[int]:
        """Ids of the tracks alive now (seen or not in the last frame), ascending."""
        return [t.id for t in self._tracks]

    @property
    def next_id(self) -> int:
        return self._next_id

    def update(self, frame: FrameInstances, stamp: float | None = None) -> np.ndarray:
        """Track ids (N,) int64 for `frame.instances`, in their order; `stamp`: the frame's
        time in seconds (None or 0: unstamped)."""
        self._frame += 1
        stamp = float(stamp) if _valid_stamp(stamp) else None
        self._expire(frame.vocabulary, stamp)
        n = len(frame.instances)
        out = np.zeros(n, np.int64)
        if n and self._tracks:
            for ti, di in self._match(frame, stamp):
                track = self._tracks[ti]
                self._seen(track, frame, di, stamp)
                out[di] = track.id
        for di in range(n):
            if out[di] == 0:
                out[di] = self._start(frame, di, stamp)
        return out

    # ---- steps -------------------------------------------------------------------------------

    def _expire(self, vocabulary: tuple[str, ...], stamp: float | None) -> None:
        names = set(vocabulary)
        kept = []
        for t in self._tracks:
            missed = self._frame - t.seen_frame - 1
            # a track seen in one frame only (born after the first) ends when the next frame
            # does not see it: a one-frame flicker of the segmentation is no object
            if t.hits == 1 and t.born > 0:
                old = missed > 0
            elif self.max_age_s > 0 and stamp is not None and t.seen_stamp is not None:
                old = stamp - t.seen_stamp > self.max_age_s
            else:
                old = missed > self.max_age_frames
            if not old and (not names or t.name in names):
                kept.append(t)
        self._tracks = kept

    def _elapsed(self, track: _Track, stamp: float | None) -> float:
        if stamp is not None and track.seen_stamp is not None:
            return max(stamp - track.seen_stamp, 0.0)
        return float(self._frame - track.seen_frame)

    def _match(self, frame: FrameInstances, stamp: float | None) -> list[tuple[int, int]]:
        """(track index, instance index) pairs of both rounds."""
        boxes = frame.boxes.astype(np.float64)
        preds = []
        iou = np.zeros((len(self._tracks), len(frame.instances)))
        for ti, track in enumerate(self._tracks):
            shift = track.velocity * self._elapsed(track, stamp)
            pred = track.box + np.array([shift[0], shift[1], shift[0], shift[1]])
            preds.append(pred)
            for di, inst in enumerate(frame.instances):
                if inst.name == track.name:
                    iou[ti, di] = self._overlap(track, pred, frame, di, boxes[di])
        pairs = _assign(np.where(iou >= self.min_iou, 1.0 - iou, _NO_MATCH))
        used_t, used_d = {t for t, _ in pairs}, {d for _, d in pairs}
        left_t = [t for t in range(len(self._tracks)) if t not in used_t]
        left_d = [d for d in range(len(frame.instances)) if d not in used_d]
        if left_t and left_d:
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
            cost = np.full((len(left_t), len(left_d)), _NO_MATCH)
            for i, ti in enumerate(left_t):
                track = self._tracks[ti]
                scale = float(np.hypot(*track.size)) or 1.0
                seen = (track.box[:2] + track.box[2:]) / 2.0
                ahead = (preds[ti][:2] + preds[ti][2:]) / 2.0
                for j, di in enumerate(left_d):
                    if frame.instances[di].name != track.name:
                        continue
                    d = min(np.hypot(*(centres[di] - seen)), np.hypot(*(centres[di] - ahead)))
                    if d / scale <= RECOVER_GATE:
                        cost[i, j] = d / scale + (RECOVER_GATE if track.hits == 1 else 0.0)
            pairs += [(left_t[i], left_d[j]) for i, j in _assign(cost)]
        return pairs

    def _overlap(self, track: _Track, pred: np.ndarray, frame: FrameInstances, di: int,
                 box: np.ndarray) -> float:
        """IoU of the track's predicted box or mask with instance di's."""
        ix0, iy0 = max(pred[0], box[0]), max(pred[1], box[1])
        ix1, iy1 = min(pred[2], box[2]), min(pred[3], box[3])
        if ix1 <= ix0 or iy1 <= iy0:
            return 0.0
        if not self.masks:
            inter = (ix1 - ix0) * (iy1 - iy0)
            area_t = (pred[2] - pred[0]) * (pred[3] - pred[1])
            area_d = (box[2] - box[0]) * (box[3] - box[1])
            return float(inter / (area_t + area_d - inter))
        # The track's mask moved by the rounded predicted shift, against the instance's mask.
        dx, dy = (int(round(v)) for v in pred[:2] - track.box[:2])
        tx0, ty0 = int(track.box[0]) + dx, int(track.box[1]) + dy
        th, tw = track.mask.shape
        (bx0, by0, bx1, by1), own = frame.crop(di + 1)
        x0, y0 = max(tx0, bx0), max(ty0, by0)
        x1, y1 = min(tx0 + tw, bx1), min(ty0 + th, by1)
        inter = 0
        if x1 > x0 and y1 > y0:
            a = track.mask[y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0]
            b = own[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
            inter = int(np.count_nonzero(a & b))
        union = int(np.count_nonzero(track.mask)) + frame.instances[di].area - inter
        return inter / union if union else 0.0

    def _seen(self, track: _Track, frame: FrameInstances, di: int, stamp: float | None) -> None:
        box, mask = frame.crop(di + 1)
        new = np.asarray(box, np.float64)
        wh, old_wh = new[2:] - new[:2], track.box[2:] - track.box[:2]
        elapsed = self._elapsed(track, stamp)
        if elapsed > 0 and np.all(np.abs(wh - old_wh) <= SIZE_CHANGE * old_wh):
            moved = ((new[:2] + new[2:]) - (track.box[:2] + track.box[2:])) / 2.0 / elapsed
            w = VELOCITY_SMOOTHING if track.hits > 1 else 1.0
            track.velocity = w * moved + (1.0 - w) * track.velocity
        track.size = np.maximum(wh, track.size * SIZE_MEMORY)
        track.box, track.mask = new, mask
        track.seen_frame, track.seen_stamp = self._frame, stamp
        track.hits += 1

    def _start(self, frame: FrameInstances, di: int, stamp: float | None) -> int:
        box, mask = frame.crop(di + 1)
        new = np.asarray(box, np.float64)
        track = _Track(self._next_id, frame.instances[di].name, new, mask, np.zeros(2),
                       new[2:] - new[:2], self._frame, stamp, born=self._frame)
        self._next_id += 1
        self._tracks.append(track)
        return track.id


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost pairs (row, column) whose cost is below _NO_MATCH."""
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _NO_MATCH]
