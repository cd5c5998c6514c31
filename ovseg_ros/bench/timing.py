"""Interleaved timing, summaries and the machine header.

Every ratio the benchmarks print compares variants measured in the same process, alternating
A/B/C... each repetition (the start order rotates), so a neighbour's load on a shared machine
hits all variants alike. Ratios are the median of per-repetition ratios.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

# A variant returns None, or a {stage: seconds} dict measured inside the call.
Variant = Callable[[], Mapping[str, float] | None]
Samples = dict[str, list[float]]


def sync(device: torch.device | str = "cpu") -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def discard(fn: Callable[..., Any], *args: Any) -> Variant:
    """A variant that calls fn(*args) and reports no stages."""

    def call() -> None:
        fn(*args)

    return call


def interleave(variants: Mapping[str, Variant], reps: int, warmup: int = 1,
               device: torch.device | str = "cpu") -> dict[str, Samples]:
    """Run each variant `warmup` times, then `reps` rounds, one call of each per round.

    Returns {variant: {"total": [s, ...], stage: [s, ...], ...}}.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    out: dict[str, Samples] = {name: {"total": []} for name in names}
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            sync(device)
            t0 = time.perf_counter()
            stages = variants[name]()
            sync(device)
            out[name]["total"].append(time.perf_counter() - t0)
            for stage, sec in (stages.items() if isinstance(stages, Mapping) else ()):
                out[name].setdefault(stage, []).append(float(sec))
    return out


def summary(samples: list[float]) -> dict[str, float]:
    """median, p90 and min in seconds, and the sample count."""
    a = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "min": float(a.min()), "n": int(a.size)}


def summarise(samples: Mapping[str, Samples]) -> dict[str, dict[str, dict[str, float]]]:
    return {name: {stage: summary(v) for stage, v in stages.items()}
            for name, stages in samples.items()}


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repetitions of num[i] / den[i] (both from the same interleaved rounds)."""
    n = min(len(num), len(den))
    return float(np.median(np.asarray(num[:n]) / np.asarray(den[:n])))


def cpu_model() -> str:
    """The model name, with family, model number and stepping where /proc/cpuinfo has them
    (virtual machines often name only the vendor line, e.g. "AMD EPYC")."""
    name, numbers = "", {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not name:
                name = value
            elif key in ("cpu family", "model", "stepping") and key not in numbers:
                numbers[key] = value
    except OSError:
        pass
    name = name or platform.processor() or "unknown"
    return name + (" (" + ", ".join(f"{k} {v}" for k, v in numbers.items()) + ")"
                   if numbers else "")


def cpu_flags() -> list[str]:
    """The CPU features that decide bf16 and int8 speed."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16",
              "amx_int8", "amx_tile")
    return [f for f in wanted if f in flags]


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_header(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    import open_clip

    header: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "python": platform.python_version(),
        "commit": git_commit(Path(__file__).resolve().parents[2]),
        "loadavg_start": list(os.getloadavg()),
    }
    if device.type == "cuda":
        header["gpu"] = torch.cuda.get_device_name(device)
    return header


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 1024,
                  reps: int = 20, shape: tuple[int, int, int] | None = None) -> float:
    """Best-of-`reps` matmul throughput: the hardware ceiling the encoder is judged by.

    (n x n) @ (n x n), or (m x k) @ (k x n) for shape=(m, k, n); 2 m k n / s / 1e9."""
    m, k, n = shape or (n, n, n)
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    best = float("inf")
    with torch.inference_mode():
        a @ b
        for _ in range(reps):
            sync(device)
            t0 = time.perf_counter()
            a @ b
            sync(device)
            best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9
