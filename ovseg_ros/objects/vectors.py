"""One CLIP vector per instance, from the frame's refined features F' (`FrameFeatures`).

An instance's vector is the mean of the unit patch vectors under its mask, each image pixel
taking the vector of the patch its centre lies in (`core.features.patch_axes`, the mapping of
FeatureMap.msg), so a patch counts by how many of the mask's pixels it covers; then made unit
length. It lives in the space of the text embeddings: its cosine with a phrase's embedding says
how well the phrase describes the object (`ranking.rank_instances`).

numpy after one download of F': the work is a bincount over the instances' pixels and a
weighted sum over the (instance, patch) pairs they cover, far too small for threads (torch's
intra-op threads cost more than they bring here on a busy 2-core machine: 16 ms on one thread
against 250 ms on two, measured). torch is imported inside the function only: the objects
layer imports without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ovseg_ros.core.features import FrameFeatures


def instance_vectors(features: FrameFeatures, ids: np.ndarray, count: int) -> np.ndarray:
    """(count, D) float32 unit vectors, row k-1 for instance k of the instance image `ids`
    ((H, W) at the frame's image size). An instance without pixels gets a zero row."""
    import torch

    from ovseg_ros.core.features import patch_axes

    if tuple(ids.shape) != tuple(features.image_size):
        raise ValueError(f"instance image {ids.shape} is not the frame's {features.image_size}")
    dim, (h, w) = features.dim, features.grid
    out = np.zeros((count, dim), np.float32)
    if count == 0:
        return out
    rows, cols = (a.numpy() for a in patch_axes(features))
    ys, xs = np.nonzero(ids)
    cells = h * w
    pairs = np.bincount(ids[ys, xs].astype(np.int64) * cells + rows[ys] * w + cols[xs],
                        minlength=(count + 1) * cells)
    nz = np.flatnonzero(pairs)  # sorted: by instance, then patch
    if nz.size == 0:
        return out
    inst, cell = np.divmod(nz, cells)
    grid = features.pooled.detach().to("cpu", torch.float32).numpy().reshape(dim, cells)
    used, slot = np.unique(cell, return_inverse=True)
    unit = grid[:, used].T  # (U, D): only the patches some instance covers
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    weighted = unit[slot] * pairs[nz, None].astype(np.float32)
    starts = np.flatnonzero(np.r_[True, inst[1:] != inst[:-1]])
    sums = np.add.reduceat(weighted, starts, axis=0)
    norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    out[inst[starts] - 1] = sums / norms
    return out
