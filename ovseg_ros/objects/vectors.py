"""One CLIP vector per instance, from the frame's refined features F' (`FrameFeatures`).

An instance's vector is the mean of the unit patch vectors under its mask, each image pixel
taking the vector of the patch its centre lies in (so a patch counts by how many of the mask's
pixels it covers), L2-normalised. It lives in the space of the text embeddings: its cosine with
a phrase's embedding says how well the phrase describes the object (`ranking.rank_instances`).
torch is imported inside the function only: the objects layer imports without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ovseg_ros.core.features import FrameFeatures


def instance_vectors(features: FrameFeatures, ids: np.ndarray, count: int) -> np.ndarray:
    """(count, D) float32 unit vectors, row k-1 for instance k of the instance image `ids`
    ((H, W) at the frame's image size). An instance of zero area (none in `find_instances`'
    output) gets a zero row."""
    import torch

    from ovseg_ros.core.features import segment_means

    if tuple(ids.shape) != tuple(features.image_size):
        raise ValueError(f"instance image {ids.shape} is not the frame's {features.image_size}")
    if count == 0:
        return np.zeros((0, features.dim), np.float32)
    segments = torch.from_numpy(ids.astype(np.int64))
    means = segment_means(features, segments, count)
    return torch.nn.functional.normalize(means, dim=1).numpy().astype(np.float32, copy=False)
