"""Image resampling (bilinear, bicubic, antialiased) with the same bits at any thread count.

PyTorch's CPU `F.interpolate` splits its work among threads and computes the splits' edges on
another code path, so a resized frame's bits would depend on the `threads` setting. On the CPU
it runs here on one thread: a frame's resize is a few milliseconds against the encoder's
hundreds (bench section `reproducible`). CUDA keeps its kernels, which do not depend on a
thread count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .reproducible import one_thread


def resample(images: torch.Tensor, size: tuple[int, int], mode: str = "bilinear",
             antialias: bool = False) -> torch.Tensor:
    """(B, C, H, W) floating point -> (B, C, *size), as F.interpolate(images, size, mode,
    align_corners=False, antialias=antialias)."""
    if images.device.type != "cpu":
        return F.interpolate(images, size=size, mode=mode, align_corners=False,
                             antialias=antialias)
    with one_thread():
        return F.interpolate(images, size=size, mode=mode, align_corners=False,
                             antialias=antialias)
