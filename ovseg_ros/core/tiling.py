"""Input resizing and the paper's sliding-window layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def short_side_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(H, W) with the short side scaled to `short`, aspect kept; `short` <= 0 keeps the size."""
    if short <= 0 or min(h, w) == short:
        return h, w
    scale = short / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W); antialiased when shrinking so thin structures survive."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False,
                         antialias=shrink)


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
    up = F.interpolate(probs, size=(h * patch, w * patch), mode="bilinear", align_corners=False)
    return up[..., : size[0], : size[1]]
