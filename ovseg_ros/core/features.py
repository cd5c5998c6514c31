"""The refined dense features of a frame, kept for phrase queries and 3D mappers.

CLIP-DINOiser classifies the guided-pooled features F' (`dinoiser.guided_pool`) against the
text embeddings: logits = LOGIT_SCALE * cos(F', text), softmax over the vocabulary. F' does not
depend on the vocabulary, so keeping it answers any later question about the frame ("where is
the red mug?") with a text embedding and one matmul, and gives mappers the per-patch vectors
that they fuse into a map and query later with any text.

A `FrameFeatures` holds a view of the batch's pooled tensor: nothing is copied per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .reproducible import product

LOGIT_SCALE = 100.0  # dinoiser.classify's scale (CLIP's logit scale)
# Bump when the computation of F' changes (model code, pooling, normalisation): features of two
# versions are not comparable. Vocabulary-independent by construction.
FEATURE_VERSION = "clipdinoiser-guided-pool-v1"


@dataclass(frozen=True)
class FrameFeatures:
    """One frame's refined features and what its classification used.

    pooled: (D, h, w) guided-pooled F' in the runtime dtype, unnormalised (a view of the batch).
    text: (C, D) float32 unit-norm text matrix the frame was classified with (background row
    first when background handling is on), aligned with the result's class_ids.
    prior: (C,) class-prior factors multiplied into the probabilities (keyframe prior), or None.
    fused: CLIP-DIY probabilities were fused into this frame's result (keyframe frame).
    patch: patch side in processing pixels; processing_size: (Hs, Ws) the image was resized to
    before padding to multiples of `patch`; image_size: (H, W) of the input image.
    """

    pooled: torch.Tensor
    text: torch.Tensor
    prior: torch.Tensor | None
    patch: int
    processing_size: tuple[int, int]
    image_size: tuple[int, int]
    fused: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.pooled.shape[-2]), int(self.pooled.shape[-1])

    @property
    def dim(self) -> int:
        return int(self.pooled.shape[0])

    def unit(self) -> torch.Tensor:
        """(D, h, w) float32 L2-normalised features: exactly what `classify` matches."""
        return F.normalize(self.pooled.float()[None], dim=1)[0]

    def logits(self, text: torch.Tensor) -> torch.Tensor:
        """LOGIT_SCALE * cosine against text (K, D) unit-norm -> (K, h, w), as `classify`."""
        # Pixels as the product's rows (reproducible.py): a permuted view of (h, w, K).
        h, w = self.grid
        unit = self.unit().flatten(1).T  # (hw, D)
        logits = product(unit, text.to(self.pooled.device).T).view(h, w, -1)
        return LOGIT_SCALE * logits.permute(2, 0, 1)

    def grid_hwd(self, dtype: torch.dtype = torch.float16) -> torch.Tensor:
        """(h, w, D) contiguous L2-normalised features in `dtype` on the CPU (for messages)."""
        return self.unit().permute(1, 2, 0).to("cpu", dtype).contiguous()


def patch_axes(features: FrameFeatures) -> tuple[torch.Tensor, torch.Tensor]:
    """((H,) patch row of each image row, (W,) patch column of each image column), int64, by
    the mapping of FeatureMap.msg (resize without crop, padding at the bottom/right)."""
    (hs, ws), (hi, wi), p = features.processing_size, features.image_size, features.patch
    h, w = features.grid
    rows = ((torch.arange(hi) + 0.5) * hs / hi / p).long().clamp_(0, h - 1)
    cols = ((torch.arange(wi) + 0.5) * ws / wi / p).long().clamp_(0, w - 1)
    return rows, cols


def pixel_patches(features: FrameFeatures) -> torch.Tensor:
    """(H, W) int64: the index (row * w + column) of the patch each image pixel's centre lies
    in (`patch_axes`)."""
    rows, cols = patch_axes(features)
    return rows[:, None] * features.grid[1] + cols[None, :]


def segment_means(features: FrameFeatures, segments: torch.Tensor, count: int) -> torch.Tensor:
    """Mean unit feature per segment, each pixel taking its patch's vector (`pixel_patches`).

    segments: (H, W) int64 ids 0..count (0 = no segment) -> (count, D) float32, row k-1 the
    mean over segment k's pixels (not renormalised). One bincount over (segment, patch) pairs
    and one (count, hw) x (hw, D) matmul: no per-pixel feature image is built."""
    h, w = features.grid
    cells = h * w
    pairs = segments.reshape(-1) * cells + pixel_patches(features).reshape(-1)
    weights = torch.bincount(pairs, minlength=(count + 1) * cells).view(count + 1, cells)[1:]
    unit = features.unit().reshape(features.dim, cells).T.cpu()  # (hw, D)
    sizes = weights.sum(dim=1, keepdim=True).clamp_min(1)
    return product(weights.float(), unit) / sizes
