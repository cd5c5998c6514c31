"""Image resampling (bilinear, bicubic, antialiased) with the same bits at any thread count.

PyTorch's CPU `F.interpolate` splits its work among threads and computes the splits' edges on
another code path, so a resized frame's bits would depend on the `threads` setting. Here each
axis is resampled as a weighted sum over a fixed number of taps, added in a fixed order with
plain multiplies and adds (correctly rounded, whatever the vector width or thread split). The
weights are F.interpolate's own (`axis_taps`: its response to unit impulses, in float64,
rounded once), so the result equals F.interpolate's to float rounding. CUDA keeps
F.interpolate, whose kernels do not depend on a thread count.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .reproducible import one_thread


@functools.lru_cache(maxsize=128)
def axis_taps(n_in: int, n_out: int, mode: str, antialias: bool
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One axis of F.interpolate(mode, align_corners=False, antialias) from n_in to n_out
    samples: (n_out, T) int64 input indices and (n_out, T) float32 weights (unused taps have
    weight 0). CPU tensors, made once per size."""
    with one_thread(), torch.inference_mode(False):
        # Channel k holds the unit impulse at k along W (along H with W = 1, the antialiased
        # kernel gives other weights than it uses on real images).
        eye = torch.eye(n_in, dtype=torch.float64).view(1, n_in, 1, n_in)
        response = F.interpolate(eye, size=(1, n_out), mode=mode, align_corners=False,
                                 antialias=antialias)[0, :, 0, :].T  # (n_out, n_in)
        used = response != 0
        taps = max(int(used.sum(dim=1).max()), 1)
        # Each row's non-zero inputs in ascending order, then padding (index 0, weight 0).
        order = torch.argsort((~used).long() * n_in
                              + torch.arange(n_in)[None], dim=1, stable=True)[:, :taps]
        weights = response.gather(1, order).float()
        return order.contiguous(), weights.contiguous()


def _along(x: torch.Tensor, dim: int, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Resample x along `dim` (-2 or -1) with taps (n_out, T)."""
    index, weight = index.to(x.device), weight.to(x.device, x.dtype)
    out = None
    for t in range(index.shape[1]):
        w = weight[:, t] if dim == -1 else weight[:, t, None]
        term = x.index_select(dim, index[:, t]) * w
        out = term if out is None else out + term
    return out


def resample(images: torch.Tensor, size: tuple[int, int], mode: str = "bilinear",
             antialias: bool = False) -> torch.Tensor:
    """(B, C, H, W) floating point -> (B, C, *size), as F.interpolate(images, size, mode,
    align_corners=False, antialias=antialias)."""
    if images.device.type != "cpu":
        return F.interpolate(images, size=size, mode=mode, align_corners=False,
                             antialias=antialias)
    h, w = images.shape[-2:]
    out = images
    if size[0] != h:
        out = _along(out, -2, *axis_taps(h, size[0], mode, antialias))
    if size[1] != w:
        out = _along(out, -1, *axis_taps(w, size[1], mode, antialias))
    return out if out is not images else images.clone()
