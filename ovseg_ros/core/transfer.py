"""Frames to the device and results back, with one upload and one wait per batch.

On CUDA a frame goes up as uint8 (a quarter of the float bytes) from a reused pinned host
buffer with non_blocking=True, and is converted, resized and normalised on the device; the
results come back as label ids (uint8, or uint16 above 255), confidence and the patch-grid
arrays, copied non_blocking into pinned memory and waited for once. On the CPU both ends are
plain (zero-copy where possible) views.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch


def check_rgb(rgb: np.ndarray) -> None:
    """ValueError unless `rgb` is a non-empty (H, W, 3) uint8 image."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError("empty image")


def to_unit_float(frames: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1] (a channels-last layout)."""
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


class FrameUploader:
    """Same-size (H, W, 3) uint8 frames -> (B, 3, H, W) float32 in [0, 1] on `device`.

    CUDA: the frames are written into a pinned (B, H, W, 3) buffer kept between calls, which
    goes up in one non_blocking copy; before the buffer is rewritten, the previous copy's event
    is waited for (that copy only, not the device). Safe to call from several threads.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self._lock = threading.Lock()
        self._buffer: torch.Tensor | None = None
        self._copied: torch.cuda.Event | None = None

    def __call__(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        for rgb in frames:
            check_rgb(rgb)
        if self.device.type != "cuda":
            host = frames[0][None] if len(frames) == 1 else np.stack(frames)
            return to_unit_float(torch.from_numpy(np.ascontiguousarray(host)).to(self.device))
        shape = (len(frames), *frames[0].shape)
        with self._lock:
            if self._copied is not None:
                self._copied.synchronize()  # the previous upload still reads the buffer
            if self._buffer is None or tuple(self._buffer.shape) != shape:
                self._buffer = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            staging = self._buffer.numpy()
            for i, rgb in enumerate(frames):
                staging[i] = rgb
            frames_dev = self._buffer.to(self.device, non_blocking=True)
            self._copied = torch.cuda.Event()
            self._copied.record()
        return to_unit_float(frames_dev)


def label_dtype(max_id: int) -> torch.dtype:
    """The smallest dtype that holds label ids up to `max_id` (uint8, else uint16)."""
    if max_id < 256:
        return torch.uint8
    return torch.uint16 if hasattr(torch, "uint16") else torch.int32


def download(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Device tensors -> host numpy arrays. CUDA: non_blocking copies into fresh pinned memory
    (the caching host allocator makes that cheap) and one wait for all of them; CPU: views."""
    if all(t.device.type == "cpu" for t in tensors):
        return [t.detach().numpy() for t in tensors]
    hosts = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
    for host, t in zip(hosts, tensors, strict=True):
        host.copy_(t, non_blocking=True)
    done = torch.cuda.Event()
    done.record()
    done.synchronize()
    return [h.numpy() for h in hosts]
