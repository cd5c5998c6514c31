"""A frame's instances in COCO's results format (`<image>_instances.json` of `ovseg segment`).

One dict per instance:

    {"image_id": ..., "category_id": 3, "category": "chair", "bbox": [x, y, w, h],
     "score": 0.83, "area": 1234, "segmentation": {"size": [H, W], "counts": "..."},
     "track_id": 7, "instance": 1}

`segmentation` is COCO's compressed run-length encoding, what `pycocotools.mask.encode` gives
(counts as a str, so the file is plain JSON; `pycocotools.mask.decode` reads it): the mask is
read column by column (column-major), run lengths alternate starting with a run of zeros, and
the counts are written as text: from the third count on, each minus the count two places before
it, then every number in 5-bit groups, least significant first, each group + 48 as one
character, with 0x20 set on every group but the last (the last group's 0x10 bit is the sign).
`bbox` is the mask's box as [x, y, width, height] in pixels (`Instance.bbox_xywh`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .instances import FrameInstances


def _runs(flat: np.ndarray) -> list[int]:
    """Alternating run lengths of a flat bool array, starting with zeros (possibly 0)."""
    if flat.size == 0:
        return [0]
    bounds = np.r_[0, np.flatnonzero(flat[1:] != flat[:-1]) + 1, flat.size]
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def counts_string(runs: Sequence[int]) -> str:
    """COCO's compressed text of run lengths."""
    out = []
    for i, count in enumerate(runs):
        x = int(count) - (int(runs[i - 2]) if i > 2 else 0)
        while True:
            c = x & 0x1F
            x >>= 5  # Python's shift is arithmetic, as the format wants for negative deltas
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
            if not more:
                break
    return "".join(out)


def counts_from_string(text: str) -> list[int]:
    """Run lengths back from COCO's compressed text (the inverse of `counts_string`)."""
    runs: list[int] = []
    pos = 0
    while pos < len(text):
        x, shift = 0, 0
        while True:
            c = ord(text[pos]) - 48
            pos += 1
            x |= (c & 0x1F) << shift
            shift += 5
            if not c & 0x20:
                if c & 0x10:
                    x |= -1 << shift
                break
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """{"size": [H, W], "counts": str} of an (H, W) bool mask."""
    h, w = mask.shape
    return {"size": [int(h), int(w)],
            "counts": counts_string(_runs(np.asarray(mask, bool).T.ravel()))}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """(H, W) bool mask of an RLE with str or bytes counts (for tests and readers)."""
    h, w = rle["size"]
    counts = rle["counts"]
    runs = counts_from_string(counts.decode() if isinstance(counts, bytes) else counts)
    if sum(runs) != h * w:
        raise ValueError(f"RLE runs cover {sum(runs)} pixels, the size says {h * w}")
    flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return flat.reshape(w, h).T


def instance_rle(frame: FrameInstances, k: int) -> dict[str, Any]:
    """The RLE of instance k, reading only the columns of its box."""
    h, w = frame.shape
    x0, _, x1, _ = frame.instances[k - 1].box
    runs = _runs((frame.ids[:, x0:x1] == k).T.ravel())
    runs[0] += x0 * h  # the columns before the box: zeros
    if len(runs) % 2:  # ends with zeros: the columns after the box extend that run
        runs[-1] += (w - x1) * h
    elif x1 < w:
        runs.append((w - x1) * h)
    return {"size": [int(h), int(w)], "counts": counts_string(runs)}


def coco_results(frame: FrameInstances, track_ids: Sequence[int] | None = None,
                 image_id: Any = None) -> list[dict[str, Any]]:
    """The results entries of a frame's instances, in instance order (see the module
    docstring); `image_id` is written when given, `track_id` when track ids are."""
    out = []
    for inst in frame.instances:
        entry: dict[str, Any] = {} if image_id is None else {"image_id": image_id}
        entry.update(category_id=inst.class_id, category=inst.name,
                     bbox=[int(v) for v in inst.bbox_xywh], score=round(inst.score, 6),
                     area=inst.area, segmentation=instance_rle(frame, inst.index),
                     instance=inst.index)
        if track_ids is not None:
            entry["track_id"] = int(track_ids[inst.index - 1])
        out.append(entry)
    return out
