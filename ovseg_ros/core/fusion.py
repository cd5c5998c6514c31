"""Fusing CLIP-DIY keyframes into the CLIP-DINOiser frame stream.

Two uses of a keyframe (CLIP-DIY probabilities p_diy over the whole frame it was computed on):

1. Spatial fusion into one frame (the keyframe's own frame in synchronous mode, the next frame
   processed after it finished in asynchronous mode), per patch and class, a weighted geometric
   mean (product of experts):

       p  proportional to  p_dino^(1 - w) * p_diy^w,    w = fusion_weight in [0, 1]

   renormalised over classes. Why geometric: either model can veto a class it finds absent and
   the result stays a distribution whatever the scales of the two; it is the same log-linear
   form as the prior below. Each term is clamped at EPS = 1e-6 before the log, so one model's
   hard zero costs at most log(1e6) = 13.8 nats instead of being an absolute veto. It runs on
   the CLIP-DINOiser patch grid (p_diy is sampled at patch centres), then the Segmenter's own
   upsampling path gives pixels, labels, confidence and stats.

2. A class-presence prior on the following frames. Presence of a class = its highest p_diy
   over the keyframe. Factor f_id = max(presence_id, prior_floor) for each non-background id.
   A frame `age` after the keyframe (frames or seconds, measured from the frame the keyframe
   was computed on) multiplies its CLIP-DINOiser class probabilities, before the background
   rule, by

       f_id ** weight,    weight = 0.5 ** (age / half_life)

   and renormalises. At age 0 the prior has full strength, after one half-life its log-effect
   is halved, and it decays toward f ** 0 = 1 (no effect). The floor keeps a class the keyframe
   missed recoverable by strong per-frame evidence. The prior is keyed by label id: classes
   added later have no factor (1), removed ones are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from .clipdiy import ClipDiy, ClipDiyConfig
from .reproducible import class_softmax
from .results import SegmentationResult, results_from_device
from .vocabulary import BACKGROUND

EPS = 1e-6


@dataclass(frozen=True)
class KeyframeScores:
    """A finished CLIP-DIY run, ready to fuse."""

    probs: torch.Tensor  # (C, Hd, Wd) CLIP-DIY class probabilities spanning the whole frame
    class_ids: tuple[int, ...]  # aligned with probs channels
    stamp: float  # stamp of the frame it was computed on
    frame_index: int  # index of that frame in the pipeline's stream
    time: float  # clock reading (seconds) for that frame; ages in seconds start here
    seconds: float  # how long the CLIP-DIY run took

    def presence(self) -> dict[int, float]:
        """Image-level presence per non-background label id: the highest probability."""
        top = self.probs.flatten(1).amax(dim=1).tolist()
        return {cid: float(p) for cid, p in zip(self.class_ids, top, strict=True) if cid != 0}


# ---- geometry: patch grid <-> whole-frame maps -------------------------------------------------

def _sample(maps: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of maps (B, C, H, W) at normalised coordinates -> (B, C, Ny, Nx).

    ys (Ny,) along H and xs (Nx,) along W in [-1, 1], align_corners=False convention (-1 is the
    outer edge of the first pixel); outside that the border value is used."""
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(maps.shape[0], -1, -1, -1)
    return F.grid_sample(maps, grid.to(maps.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)


def image_to_patches(maps: torch.Tensor, grid: tuple[int, int], patch: int,
                     proc_size: tuple[int, int]) -> torch.Tensor:
    """Whole-frame maps (B, C, H, W) -> values at the centres of an (h, w) patch grid.

    The patch grid covers the processing image of size proc_size (Hs, Ws) padded at the bottom
    and right to multiples of `patch`; patch j's centre is at (j + 0.5) * patch in processing
    pixels, i.e. 2 * (j + 0.5) * patch / Hs - 1 in normalised frame coordinates (padded patches
    read the border)."""
    h, w = grid
    dev = maps.device
    ys = 2.0 * (torch.arange(h, device=dev) + 0.5) * patch / proc_size[0] - 1.0
    xs = 2.0 * (torch.arange(w, device=dev) + 0.5) * patch / proc_size[1] - 1.0
    return _sample(maps, ys, xs)


def patches_to_image(maps: torch.Tensor, patch: int, proc_size: tuple[int, int],
                     out_size: tuple[int, int]) -> torch.Tensor:
    """Patch-grid maps (B, C, h, w) -> (B, C, Ho, Wo) spanning the (unpadded) frame: output pixel
    i sits at (i + 0.5) * Hs / Ho processing pixels, which is that divided by h * patch in the
    grid's normalised coordinates."""
    h, w = maps.shape[-2:]
    dev = maps.device
    ys = 2.0 * (torch.arange(out_size[0], device=dev) + 0.5) * proc_size[0] / out_size[0]
    xs = 2.0 * (torch.arange(out_size[1], device=dev) + 0.5) * proc_size[1] / out_size[1]
    return _sample(maps, ys / (h * patch) - 1.0, xs / (w * patch) - 1.0)


# ---- the rules --------------------------------------------------------------------------------

def fuse_probabilities(p_dino: torch.Tensor, p_diy: torch.Tensor, weight: float) -> torch.Tensor:
    """Weighted geometric mean over classes (dim -3): (..., C, h, w) twice -> (..., C, h, w)."""
    logits = ((1.0 - weight) * torch.log(p_dino.float().clamp_min(EPS))
              + weight * torch.log(p_diy.float().clamp_min(EPS)))
    return class_softmax(logits, dim=-3)


def prior_weight(age: float, half_life: float) -> float:
    """0.5 ** (age / half_life); ages below 0 (clock jumps) count as 0."""
    return 0.5 ** (max(age, 0.0) / half_life)


@dataclass(frozen=True)
class PresencePrior:
    """Class-presence factors from one keyframe, decaying with age."""

    factors: Mapping[int, float]  # label id -> max(presence, floor), background excluded
    frame_index: int
    time: float

    @classmethod
    def from_keyframe(cls, keyframe: KeyframeScores, floor: float) -> PresencePrior:
        factors = {cid: min(1.0, max(p, floor)) for cid, p in keyframe.presence().items()}
        return cls(factors, keyframe.frame_index, keyframe.time)

    def at(self, age: float, half_life: float) -> dict[int, float]:
        """{label id: f ** weight} for a frame `age` (frames or seconds) after the keyframe."""
        wt = prior_weight(age, half_life)
        return {cid: f ** wt for cid, f in self.factors.items()}


def align_channels(keyframe: KeyframeScores, class_ids: Sequence[int]) -> torch.Tensor | None:
    """keyframe.probs reordered to `class_ids`, or None when the class sets differ (the
    vocabulary changed since the keyframe; spatial fusion over other classes is meaningless)."""
    if set(keyframe.class_ids) != set(class_ids) or len(keyframe.class_ids) != len(class_ids):
        return None
    index = [keyframe.class_ids.index(cid) for cid in class_ids]
    if index == list(range(len(index))):
        return keyframe.probs
    return keyframe.probs[torch.tensor(index, device=keyframe.probs.device)]


def fuse_keyframe(segmenter, result: SegmentationResult, keyframe: KeyframeScores,
                  weight: float) -> SegmentationResult | None:
    """`result` with the keyframe fused in (labels, confidence, stats recomputed), or None
    when the keyframe's classes do not match the result's. The fused result has keyframe=True,
    keyframe_stamp = keyframe.stamp, timings["keyframe"] (CLIP-DIY run) and
    timings["keyframe_fusion"].

    Pixels come from the fused patch grid through `segmenter.upsample` (in slide mode that is
    the patch-level path, not the per-window stitching of the unfused frame)."""
    start = time.perf_counter()
    p_diy = align_channels(keyframe, result.class_ids)
    if p_diy is None:
        return None
    dev = segmenter.runtime.device
    p_dino = torch.from_numpy(result.patch_probs).to(dev)
    image_hw = tuple(result.labels.shape)
    proc = segmenter.processing_size(image_hw)
    p_diy = image_to_patches(p_diy[None].to(dev).float(), tuple(p_dino.shape[-2:]),
                             segmenter.encoder.patch, proc)[0]
    fused = fuse_probabilities(p_dino, p_diy, weight)
    pixels = segmenter.upsample(fused[None], image_hw)[0]
    out = results_from_device(pixels[None], fused[None], torch.from_numpy(result.objectness)[None],
                              result.class_ids, result.class_names, segmenter.config.threshold,
                              result.vocabulary_version)[0]
    timings = dict(result.timings, keyframe=keyframe.seconds,
                   keyframe_fusion=time.perf_counter() - start)
    feats = None if result.features is None else replace(result.features, fused=True)
    return replace(out, keyframe=True, keyframe_stamp=keyframe.stamp, timings=timings,
                   features=feats, vocabulary=result.vocabulary)


# ---- the default keyframe stage ----------------------------------------------------------------

class ClipDiyStage:
    """CLIP-DIY on a frame, with the saliency s = CLIP-DINOiser objectness of the same frame.

    Called as stage(rgb, result) -> (C, Hd, Wd) probabilities aligned with result.class_ids.
    Any callable with that signature can replace it (tests inject slow fakes).
    """

    def __init__(self, segmenter, config: ClipDiyConfig | None = None, model: str = "",
                 weights: str = ""):
        self.segmenter = segmenter
        self.diy = ClipDiy.from_segmenter(segmenter, config, model, weights)

    def missing(self, names: Sequence[str]) -> list[str]:
        """The class names whose CLIP-DIY text is neither in memory nor on disk."""
        return self.diy.text_cache.load(list(names))

    def prepare(self, names: Sequence[str]) -> None:
        """Encode the text of new class names now (called when the vocabulary changes)."""
        self.diy.text([BACKGROUND, *names] if self.segmenter.config.background else names)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, result: SegmentationResult) -> torch.Tensor:
        seg = self.segmenter
        image = seg.to_tensor(rgb)
        size = tuple(self.diy.config.image_size)
        objectness = torch.from_numpy(result.objectness).to(image.device)[None, None].float()
        proc = seg.processing_size(tuple(rgb.shape[:2]))
        saliency = patches_to_image(objectness, seg.encoder.patch, proc, size)[:, 0]
        background = 0 if result.class_ids and result.class_ids[0] == 0 else None
        probs = self.diy.probabilities(image, result.class_names, saliency, background)
        return probs[0]
