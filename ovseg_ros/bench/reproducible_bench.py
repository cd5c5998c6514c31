"""`--only reproducible`: what the same bits at any thread count cost (core/reproducible.py),
each new path beside the old one in the same run.

- text: new names encoded one at a time on one thread (the product) against all of them in
  shared batches on every thread (what it did before);
- resize: a frame resized on one thread (`resample`) against F.interpolate on every thread;
- frame: `Segmenter.segment` (torch fp32) in a process with MKL's strict reproducibility mode
  (the product's default) against one with MKL's default mode, alternating.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from .cli_bench import summary
from .images import sample_images

_FRAME_SCRIPT = """
import json, sys, time
import numpy as np, torch
from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.tiny import CONFIGS, register_tiny
model, size, reps = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
if model in CONFIGS:
    register_tiny(name=model)
seg = Segmenter(SegmenterConfig(model=model, clip_weights="random", heads="random",
                                device="cpu", precision="fp32", backend="torch", input_size=0,
                                cache_dir=sys.argv[4]))
seg.set_prompts(["person", "chair", "table", "door", "window"])
rgb = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
seg.segment(rgb)
times = []
for _ in range(reps):
    t0 = time.perf_counter(); seg.segment(rgb); times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def _frame_times(model: str, size: tuple[int, int], reps: int, mkl_mode: str,
                 cache: str) -> list[float]:
    env = dict(os.environ, MKL_CBWR=mkl_mode)
    done = subprocess.run([sys.executable, "-c", _FRAME_SCRIPT, model, json.dumps(list(size)),
                           str(reps), cache], capture_output=True, text=True, env=env,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"frame process ({mkl_mode}) exited {done.returncode}: "
                           f"{done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _timed(fn, reps: int) -> list[float]:
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_reproducible(seg: Any, model: str, size: tuple[int, int], reps: int, names: int,
                       rounds: int, cache: str) -> dict[str, Any]:
    from ovseg_ros.core import tiling

    cache_text = seg.text_cache
    words = [f"object {i}" for i in range(names)]
    stages: dict[str, Any] = {}
    stages["text_together_all_threads"] = summary(_timed(
        lambda: cache_text.encode_together(words), max(1, reps // 3)))
    stages["text_one_by_one_one_thread"] = summary(_timed(
        lambda: cache_text._encode(words), max(1, reps // 3)))
    frame = torch.from_numpy(sample_images((480, 640), 1)[0]).permute(2, 0, 1)[None].float()
    target = tiling.short_side_size(480, 640, 448)
    stages["resize_interpolate"] = summary(_timed(lambda: F.interpolate(
        frame, size=target, mode="bilinear", align_corners=False, antialias=True), reps))
    stages["resize_resample"] = summary(_timed(lambda: tiling.resize(frame, target), reps))
    strict: list[float] = []
    default: list[float] = []
    for r in range(rounds):
        for mode in (("AUTO,STRICT", "AUTO") if r % 2 == 0 else ("AUTO", "AUTO,STRICT")):
            (strict if mode == "AUTO,STRICT" else default).extend(
                _frame_times(model, size, reps, mode, cache))
    stages["frame_mkl_default"] = summary(default)
    stages["frame_mkl_strict"] = summary(strict)
    med = {k: v["median"] for k, v in stages.items()}
    return {"names": names, "size": list(size), "threads": torch.get_num_threads(),
            "stages": stages,
            "ratios": {"text_new_vs_old": med["text_one_by_one_one_thread"]
                       / med["text_together_all_threads"],
                       "resize_new_vs_old": med["resize_resample"] / med["resize_interpolate"],
                       "frame_strict_vs_default": med["frame_mkl_strict"]
                       / med["frame_mkl_default"]}}
