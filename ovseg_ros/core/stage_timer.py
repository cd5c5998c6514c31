"""Per-stage timing of a frame that never synchronises the device in production.

- CPU: wall clock between marks (CPU ops have finished when they return: free and exact).
- CUDA with `profile`: CUDA events at each mark, read after the frame's download (which has
  waited for the stream already, so reading them adds no wait).
- CUDA without `profile`: kernels are queued asynchronously, so wall-clock marks would time
  the queueing, and honest ones would need a synchronize per stage; only the whole frame is
  timed ("frame": host time from the first mark to `result`, which follows the download).
"""

from __future__ import annotations

import time

import torch


class StageTimer:
    """mark(stage) ends `stage`; result() -> {stage: seconds}."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._last = self._t0
        self._stages: dict[str, float] = {}

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self._stages[stage] = self._stages.get(stage, 0.0) + now - self._last
        self._last = now

    def result(self) -> dict[str, float]:
        return dict(self._stages)


class FrameOnlyTimer(StageTimer):
    """CUDA production frames: no per-stage times, the frame's host time only."""

    def mark(self, stage: str) -> None:
        return None

    def result(self) -> dict[str, float]:
        return {"frame": time.perf_counter() - self._t0}


class CudaEventTimer(StageTimer):
    """CUDA events recorded on the current stream; elapsed times read in `result`."""

    def __init__(self) -> None:
        super().__init__()
        self._events: list[tuple[str, torch.cuda.Event]] = []
        self._start = torch.cuda.Event(enable_timing=True)
        self._start.record()

    def mark(self, stage: str) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        self._events.append((stage, event))

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        previous = self._start
        for stage, event in self._events:
            event.synchronize()  # already complete after the download: no wait in practice
            out[stage] = out.get(stage, 0.0) + previous.elapsed_time(event) / 1e3
            previous = event
        return out


def stage_timer(device: torch.device, profile: bool) -> StageTimer:
    """The timer a frame on `device` uses (see the module docstring)."""
    if device.type != "cuda":
        return StageTimer()
    return CudaEventTimer() if profile else FrameOnlyTimer()
