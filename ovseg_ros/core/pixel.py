"""One pixel's classes on a segmented frame: its label and confidence as the label image holds
them, and every class of the vocabulary ranked by its probability there.

The probabilities are the frame's final patch probabilities (`SegmentationResult.patch_probs`,
keyframe fusion and class prior included) upsampled to that one pixel by the weights of the
whole-mode path (`tiling.pixel_weights`), so the first ranked class is the label image's class
and its probability the confidence image's value (unless the pixel fell below `threshold` and
is unlabelled). Cost: one (C, h, w) weighted sum; the image encoder never runs again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import tiling
from .results import SegmentationResult

MAX_RANKED = 32


class PixelError(ValueError):
    """The pixel request was refused; the message says why."""


@dataclass(frozen=True)
class PixelClasses:
    """u: column, v: row. class_id/confidence: the label and confidence images at (u, v).
    ranked: (label id, name, probability), most probable first; empty in slide mode."""

    u: int
    v: int
    class_id: int
    class_name: str
    confidence: float
    ranked: list[tuple[int, str, float]]


def class_name(result: SegmentationResult, class_id: int) -> str:
    """The name of a label id on this frame ('unlabelled' for 0 without a background class)."""
    for cid, name in zip(result.class_ids, result.class_names, strict=True):
        if cid == class_id:
            return name
    return "unlabelled" if class_id == 0 else f"id {class_id}"


def pixel_classes(result: SegmentationResult, u: int, v: int, count: int = 5
                  ) -> PixelClasses:
    """The classes of pixel (u, v) (column, row); the `count` most probable ranked (1 to
    MAX_RANKED). PixelError when (u, v) is outside the frame."""
    height, width = result.labels.shape
    if not (0 <= u < width and 0 <= v < height):
        raise PixelError(f"pixel (u={u}, v={v}) is outside the {width}x{height} frame")
    count = max(1, min(int(count), MAX_RANKED))
    cid = int(result.labels[v, u])
    ranked: list[tuple[int, str, float]] = []
    feats = result.features
    if feats is not None:  # whole mode: the upsampling path is known exactly
        wy, wx = tiling.pixel_weights(feats.grid, feats.patch, feats.processing_size,
                                      feats.image_size, v, u)
        probs = np.einsum("chw,h,w->c", result.patch_probs.astype(np.float64),
                          wy.numpy().astype(np.float64), wx.numpy().astype(np.float64))
        order = np.argsort(-probs, kind="stable")[:count]
        ranked = [(int(result.class_ids[c]), result.class_names[c], float(probs[c]))
                  for c in order]
    return PixelClasses(u, v, cid, class_name(result, cid), float(result.confidence[v, u]),
                        ranked)
