"""Memory: the product's footprint in the benchmark process, and a fresh process that loads CLIP
weights from a file, as a robot with real weights does (peak at load, steady after a frame).

Child: `python -m ovseg_ros.bench.memory WEIGHTS MODEL DEVICE PRECISION INPUT_SIZE` prints one
JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.tiny import TINY, register_tiny

from .timing import current_rss_mb, peak_rss_mb


def bench_memory(seg: Segmenter) -> dict[str, Any]:
    """RSS of this process (after every section) and the size of the model's tensors."""
    params = sum(p.numel() * p.element_size() for p in seg.clip.parameters())
    params += sum(p.numel() * p.element_size() for p in seg.heads.parameters())
    out: dict[str, Any] = {"peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb(),
                           "model_params_mb": params / 2**20}
    if seg.runtime.device.type == "cuda":
        out["gpu_max_allocated_mb"] = torch.cuda.max_memory_allocated(seg.runtime.device) / 2**20
    return out


def bench_load_memory(model: str, device: str, precision: str, input_size: int,
                      timeout: float = 600.0) -> dict[str, Any]:
    """Save seeded random CLIP weights of `model` to a file, then load them in a new process."""
    with tempfile.TemporaryDirectory(prefix="ovseg-mem-") as tmp:
        path = Path(tmp) / "clip.bin"
        torch.manual_seed(0)
        torch.save(open_clip.create_model(model, pretrained=None).state_dict(), path)
        file_mb = path.stat().st_size / 2**20
        done = subprocess.run([sys.executable, "-m", "ovseg_ros.bench.memory", str(path), model,
                               device, precision, str(input_size)],
                              capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"skipped": f"child failed ({done.returncode}): {done.stderr.strip()[-300:]}"}
    return {"weights_file_mb": file_mb, **json.loads(lines[-1])}


def high_water_mb() -> float:
    """Peak RSS of this process image (VmHWM). Unlike ru_maxrss it starts afresh at exec, so a
    child does not inherit the benchmark process's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return peak_rss_mb()


def child(weights: str, model: str, device: str, precision: str, input_size: int) -> None:
    if model == TINY:
        register_tiny()
    seg = Segmenter(SegmenterConfig(model=model, clip_weights=weights, heads="random",
                                    device=device, precision=precision, input_size=input_size))
    loaded = {"peak_rss_at_load_mb": high_water_mb(), "rss_after_load_mb": current_rss_mb()}
    seg.set_prompts(["person", "chair", "table"])
    for _ in range(3):
        seg.segment(np.zeros((480, 640, 3), np.uint8))
    print(json.dumps({**loaded, "peak_rss_mb": high_water_mb(),
                      "rss_after_frames_mb": current_rss_mb()}), flush=True)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
