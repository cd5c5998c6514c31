"""CLIP-DIY: multi-scale crops classified with CLIP's global image embedding (keyframes).

Paper: Wysoczanska et al., "CLIP-DIY: CLIP Dense Inference Yields Open-Vocabulary Semantic
Segmentation For-Free", WACV 2024. Our implementation of the algorithm:

1. resize the frame to `image_size` (default 256 x 256, aspect not kept, as in the paper);
2. per scale, cut square crops of `crop` pixels every `stride` pixels (default stride crop / 2);
3. resize every crop to the CLIP input size and embed all crops in one batched `encode_image`;
4. cosine with "a photo of a {}." text embeddings: one raw score vector per crop;
5. put each scale's scores on its crop grid, interpolate bilinearly between crop centres to
   every pixel, and average the scales with `scale_weights`;
6. saliency fusion: background channel * (1 - s), other channels * s, softmax(logit_scale * .).

Crop geometry (sides that the stride does not divide): crops start every `stride` pixels and the
last one is pushed back inside the image (sliding-window rule, `tiling.window_starts`), so every
pixel is covered at every scale and no crop reads padding. A crop larger than a side is shrunk
to that side (crops stay square). Step 5 interpolates between the true crop centres, so
pushed-in crops stay where they were cut; beyond the outermost centres the value is constant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from . import tiling
from .config import ClipDiyConfig
from .device import Runtime
from .maskclip import GlobalClipEncoder, normalise_pixels
from .reproducible import class_softmax, product, small_work
from .resample import resample
from .text import TextEmbeddingCache
from .weights import default_cache_dir, load_clip

# CLIP's trained logit scale (exp(4.6052) = 100 in every released CLIP). See `saliency_fusion`.
DIY_LOGIT_SCALE = ClipDiyConfig.logit_scale


@dataclass(frozen=True)
class ScaleLayout:
    """Where one scale's crops lie: crop side and the start offsets along y and x."""

    crop: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    def centres(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop centres in pixel coordinates (pixel i spans [i, i + 1))."""
        half = self.crop / 2.0
        return (torch.tensor(self.ys, dtype=torch.float64) + half,
                torch.tensor(self.xs, dtype=torch.float64) + half)


def crop_layout(h: int, w: int, crop: int, stride: int) -> ScaleLayout:
    """Crops of side min(crop, h, w) every `stride` pixels, the last pushed inside the image."""
    side = min(crop, h, w)
    return ScaleLayout(side, tuple(tiling.window_starts(h, side, stride)),
                       tuple(tiling.window_starts(w, side, stride)))


def cut_crops(images: torch.Tensor, layout: ScaleLayout) -> torch.Tensor:
    """All crops of one scale with one gather: (B, 3, H, W) -> (B * ny * nx, 3, c, c).

    Order: image, then crop row, then crop column (row-major per image).
    """
    dev = images.device
    span = torch.arange(layout.crop, device=dev)
    rows = torch.tensor(layout.ys, device=dev)[:, None] + span  # (ny, c)
    cols = torch.tensor(layout.xs, device=dev)[:, None] + span  # (nx, c)
    crops = images[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (B, 3, ny, nx, c, c)
    b, ch = images.shape[:2]
    return crops.permute(0, 2, 3, 1, 4, 5).reshape(b * layout.count, ch, layout.crop, layout.crop)


def resize_crops(crops: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, c, c) in [0, 1] -> (N, 3, *size): bicubic (antialiased when shrinking), clamped to
    [0, 1] like the uint8 images CLIP's own preprocessing feeds it."""
    if tuple(crops.shape[-2:]) == tuple(size):
        return crops
    shrink = crops.shape[-2] > size[0] or crops.shape[-1] > size[1]
    return resample(crops, size, "bicubic", antialias=shrink).clamp_(0.0, 1.0)


def interpolation_matrix(knots: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation weights (N, K) from K increasing knots to N coordinates;
    constant beyond the first and last knot (one knot: all ones). Rows sum to 1."""
    k, n = knots.numel(), coords.numel()
    if k == 1:
        return torch.ones(n, 1, dtype=coords.dtype)
    idx = (torch.searchsorted(knots, coords, right=True) - 1).clamp(0, k - 2)
    left, right = knots[idx], knots[idx + 1]
    t = ((coords - left) / (right - left)).clamp(0.0, 1.0)
    m = torch.zeros(n, k, dtype=coords.dtype)
    m[torch.arange(n), idx] = 1.0 - t
    m[torch.arange(n), idx + 1] += t
    return m


def grid_to_pixels(grid: torch.Tensor, layout: ScaleLayout, size: tuple[int, int]) -> torch.Tensor:
    """One scale's crop scores (B, C, ny, nx) -> per-pixel scores (B, C, H, W), bilinear between
    crop centres (separable: My @ grid @ Mx^T)."""
    cy, cx = layout.centres()
    my = interpolation_matrix(cy, torch.arange(size[0], dtype=torch.float64) + 0.5)
    mx = interpolation_matrix(cx, torch.arange(size[1], dtype=torch.float64) + 0.5)
    my, mx = my.to(grid.device, grid.dtype), mx.to(grid.device, grid.dtype)
    # Two products with many rows each (reproducible.py), not one small-row einsum.
    b, c, ny, nx = grid.shape
    cols = product(grid.reshape(b * c * ny, nx), mx.T).view(b * c, ny, -1)  # (B * C, ny, W)
    return product(my, cols).view(b, c, size[0], size[1])


def saliency_fusion(
    scores: torch.Tensor,
    saliency: torch.Tensor,
    background: int | None = 0,
    logit_scale: float = DIY_LOGIT_SCALE,
) -> torch.Tensor:
    """CLIP-DIY's saliency rule. scores (B, C, H, W) raw cosine, saliency (B, H, W) in [0, 1]
    -> probabilities (B, C, H, W).

    The background channel is multiplied by (1 - s), every other channel by s, then
    softmax(logit_scale * .) over classes. The paper's softmax over raw cosines (scale 1) is
    almost uniform, because cosines of different classes differ by a few hundredths: argmax is
    the same for any scale > 0, but the probabilities we fuse with CLIP-DINOiser would carry no
    information. We use CLIP's own trained logit scale (100, also what CLIP-DINOiser's
    `classify` uses), which makes these crop-level zero-shot probabilities comparable.
    Without a background channel (`background=None`) there is nothing to weigh against the
    saliency, so it is not applied.
    """
    if background is None:
        return class_softmax(logit_scale * scores, dim=1)
    s = saliency.to(scores.dtype).unsqueeze(1)
    fg = torch.ones(scores.shape[1], dtype=torch.bool, device=scores.device)
    fg[background] = False
    weighted = torch.where(fg.view(1, -1, 1, 1), scores * s, scores * (1.0 - s))
    return class_softmax(logit_scale * weighted, dim=1)


class ClipDiy:
    """CLIP-DIY score maps with any open_clip CLIP (the Segmenter's own by default)."""

    def __init__(self, clip: nn.Module, tokenizer, runtime: Runtime,
                 config: ClipDiyConfig | None = None, store_folder: Path | None = None,
                 model: str = ""):
        """store_folder, model: keep the text embeddings on disk (core.text_store)."""
        self.config = config = config or ClipDiyConfig()
        self.clip = clip
        self.runtime = runtime
        size = getattr(clip.visual, "image_size", 224)
        self.input_size = (size, size) if isinstance(size, int) else tuple(size)
        self.text_cache = TextEmbeddingCache(clip, tokenizer, runtime, templates=(config.template,),
                                             store_folder=store_folder, model=model)
        try:  # same numbers as clip.encode_image, less work
            self.image_encoder: Callable[[torch.Tensor], torch.Tensor] = GlobalClipEncoder(
                clip.visual)
        except ValueError:  # a tower we cannot take apart: open_clip's own forward
            self.image_encoder = clip.encode_image

    @classmethod
    def from_segmenter(cls, segmenter, config: ClipDiyConfig | None = None, model: str = "",
                       weights: str = "") -> ClipDiy:
        """Reuse `segmenter.clip` (no second model in memory) unless `model` names a separate
        CLIP with `weights`, loaded through `weights.load_clip` (tags, local files, "random")."""
        seg_cfg = segmenter.config
        cache = Path(seg_cfg.cache_dir) if seg_cfg.cache_dir else None
        store = Path(cache or default_cache_dir()) / "text"
        if not model:
            return cls(segmenter.clip, segmenter.tokenizer, segmenter.runtime, config, store,
                       seg_cfg.model)
        clip = load_clip(model, weights, cache, seg_cfg.seed)
        runtime = segmenter.runtime
        clip = clip.to(runtime.device, runtime.dtype).eval()
        return cls(clip, open_clip.get_tokenizer(model), runtime, config, store, model)

    def text(self, names: Sequence[str]) -> torch.Tensor:
        """(C, D) unit-norm single-template embeddings, cached per name."""
        return self.text_cache.embed(list(names))

    def layouts(self, h: int, w: int) -> list[ScaleLayout]:
        cfg = self.config
        return [crop_layout(h, w, c, s) for c, s in zip(cfg.crop_sizes, cfg.strides(), strict=True)]

    def batch_size(self) -> int:
        """Crops per encode_image call: the configured max_batch, or the device's default."""
        return self.config.max_batch or (4 if self.runtime.device.type == "cpu" else 64)

    @torch.inference_mode()
    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, c, c) in [0, 1] -> (N, D) unit-norm global image embeddings, batched."""
        pixels = normalise_pixels(resize_crops(crops, self.input_size)).to(self.runtime.dtype)
        step = self.batch_size()
        tokens = (pixels.shape[-2] // 16) * (pixels.shape[-1] // 16) + 1  # per crop, about
        with small_work(min(step, len(pixels)) * tokens):
            feats = [self.image_encoder(pixels[i:i + step]) for i in range(0, len(pixels), step)]
        return F.normalize(torch.cat(feats).float(), dim=-1)

    @torch.inference_mode()
    def crop_scores(self, images: torch.Tensor, text: torch.Tensor
                    ) -> tuple[list[torch.Tensor], list[ScaleLayout]]:
        """Raw cosine per crop, per scale: images (B, 3, H, W) in [0, 1] at the CLIP-DIY image
        size, text (C, D) -> list of (B, C, ny, nx) grids and their layouts.

        All scales go through one `embed_crops` call: one encode_image per `max_batch` crops.
        """
        b, _, h, w = images.shape
        layouts = self.layouts(h, w)
        crops = [resize_crops(cut_crops(images, lay), self.input_size) for lay in layouts]
        scores = product(self.embed_crops(torch.cat(crops)), text.float().t())  # (N, C)
        grids, start = [], 0
        for lay in layouts:
            n = b * lay.count
            chunk = scores[start:start + n].view(b, len(lay.ys), len(lay.xs), -1)
            grids.append(chunk.permute(0, 3, 1, 2).contiguous())
            start += n
        return grids, layouts

    @torch.inference_mode()
    def score_maps(self, images: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """Raw multi-scale cosine maps: images (B, 3, H0, W0) in [0, 1] (any size, resized to
        `image_size` here), class names (C) -> (B, C, H, W) at `image_size`."""
        size = tuple(self.config.image_size)
        images = tiling.resize(images.float(), size)
        grids, layouts = self.crop_scores(images, self.text(names))
        weights = self.config.weights_per_scale()
        total = sum(wt * grid_to_pixels(g, lay, size)
                    for wt, g, lay in zip(weights, grids, layouts, strict=True))
        return total / sum(weights)

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor, names: Sequence[str], saliency: torch.Tensor,
                      background: int | None = 0) -> torch.Tensor:
        """`score_maps` then `saliency_fusion`. saliency (B, H, W) at `image_size` (use
        `tiling.resize` / `fusion.patches_to_image` to get it there) -> (B, C, H, W)."""
        scores = self.score_maps(images, names)
        return saliency_fusion(scores, saliency, background, self.config.logit_scale)
