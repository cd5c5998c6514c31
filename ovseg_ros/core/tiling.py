"""Input resizing and the paper's sliding-window layout."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .reproducible import one_thread, product
from .resample import resample

# The paper's test resize is (2048, 448) with kept aspect: short side 448 unless that would
# make the long side exceed 2048. Scaled with `short`, this caps very thin frames (2 x 4000).
LONG_TO_SHORT = 2048 / 448


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(H, W) with the short side scaled to `short` (aspect kept), unless that makes the long
    side exceed `short * 2048 / 448`, which then sets the scale; `short` <= 0 keeps the size."""
    if short <= 0:
        return h, w
    scale = min(short / min(h, w), short * LONG_TO_SHORT / max(h, w))
    if scale == 1.0:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W); antialiased when shrinking so thin structures survive."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return resample(images, size, "bilinear", antialias=shrink)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows along one axis; the last window is pushed back inside the image."""
    if length <= window:
        return [0]
    count = (length - window + stride - 1) // stride + 1
    return [min(i * stride, length - window) for i in range(count)]


def windows(h: int, w: int, window: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) boxes covering an h x w image; boxes are min(window, side) wide."""
    wh, ww = min(window, h), min(window, w)
    return [(y, y + wh, x, x + ww)
            for y in window_starts(h, window, stride) for x in window_starts(w, window, stride)]


def upsample_patches(probs: torch.Tensor, patch: int, size: tuple[int, int]) -> torch.Tensor:
    """Patch scores (B, C, h, w) -> pixel scores (B, C, H, W): bilinear to the padded size, then
    the padding is cut off, so pixels keep their alignment with the patches that saw them."""
    h, w = probs.shape[-2:]
    up = resample(probs, (h * patch, w * patch), "bilinear")
    return up[..., : size[0], : size[1]]


@functools.lru_cache(maxsize=64)
def _axis_matrix(n: int, patch: int, crop: int, out: int, antialias: bool,
                 device: torch.device) -> torch.Tensor:
    """(out, n) fp32 weights of one axis of `upsample_patches` followed by `resize`.

    Both are separable linear maps, so resizing the n basis vectors gives their exact weights
    (computed in float64, so they round once)."""
    # Channel k holds basis vector k along W (along H with W = 1, the antialiased kernel
    # gives other weights than it uses on real images).
    with one_thread():  # cached: its bits must not depend on who made it first
        eye = torch.eye(n, dtype=torch.float64).view(1, n, 1, n)
        up = F.interpolate(eye, size=(1, n * patch), mode="bilinear", align_corners=False)
        up = up[..., :crop]
        if crop != out:
            up = F.interpolate(up, size=(1, out), mode="bilinear", align_corners=False,
                               antialias=antialias)
        return up[0, :, 0, :].T.contiguous().to(device, torch.float32)


def upsample_to_image(maps: torch.Tensor, patch: int, size: tuple[int, int],
                      image_hw: tuple[int, int]) -> torch.Tensor:
    """Patch maps (B, C, h, w) -> (B, C, H, W) at `image_hw`: the same map as
    `resize(upsample_patches(maps, patch, size), image_hw)`, as two small matmuls.

    About 2x cheaper than two bilinear passes over C full-size channels, and the result is laid
    out channels-last (a permuted view), so per-pixel max/argmax over classes reads contiguous
    memory. Values equal the two-pass path to float rounding (~1e-7).
    """
    b, c, h, w = maps.shape
    shrink = image_hw[0] < size[0] or image_hw[1] < size[1]  # `resize`'s antialias rule
    ry = _axis_matrix(h, patch, size[0], image_hw[0], shrink, maps.device)
    rx = _axis_matrix(w, patch, size[1], image_hw[1], shrink, maps.device)
    # Contiguous maps: one product with B * C * h rows (a permuted view would run as B * C
    # small products, whose rounding depends on the thread count: reproducible.py).
    cols = product(maps.float().contiguous(), rx.T).permute(0, 2, 3, 1).reshape(b, h, -1)
    out = product(ry, cols).view(b, image_hw[0], image_hw[1], c)  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def pixel_weights(grid: tuple[int, int], patch: int, size: tuple[int, int],
                  image_hw: tuple[int, int], row: int, col: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights `upsample_to_image` gives the patch grid (h, w) for one image pixel:
    ((h,), (w,)) float32 on the CPU; its value there is wy @ maps @ wx."""
    shrink = image_hw[0] < size[0] or image_hw[1] < size[1]
    cpu = torch.device("cpu")
    ry = _axis_matrix(grid[0], patch, size[0], image_hw[0], shrink, cpu)
    rx = _axis_matrix(grid[1], patch, size[1], image_hw[1], shrink, cpu)
    return ry[row], rx[col]
