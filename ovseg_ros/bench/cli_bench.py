"""`--only cli`: what a user runs, `ovseg segment` on a folder, per frame with the start-up
removed: the defaults, `--precision int8` and each exact candidate, beside the authors' way
(the plain fp32 pipeline, `baselines.PlainPipeline`) on the same frames in the same run.

Per frame = the median gap between consecutive frames' finished outputs (the JSON mtime, the
last file a frame writes), from the third frame on (the first ones carry one-time costs). Each
variant is its own process, `rounds` times, the variants' order rotated per round; the plain
pipeline runs in this process between them (nothing else runs meanwhile). All share one new
cache_dir: the first start exports the ONNX files and probes, as a user's first start does,
and that is start-up, not a frame.

`python -m ovseg_ros.bench.cli_bench MODEL ARGS...` is `ovseg ARGS...` with the benchmark's
tiny model registered (for --smoke); for any other model it is plain `ovseg`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ovseg_ros.core.tiny import TINY, register_tiny

from .baselines import PlainPipeline
from .images import sample_images

# name -> the options beyond the model's; "defaults" adds none (backend and precision auto).
VARIANTS = {"defaults": [], "int8": ["--precision", "int8"],
            "torch_fp32": ["--backend", "torch", "--precision", "fp32"],
            "onnxruntime_fp32": ["--backend", "onnxruntime", "--precision", "fp32"]}
EXACT = ("torch_fp32", "onnxruntime_fp32")
SKIP = 2  # frames whose gaps are not counted


def _run_ovseg(model: str, argv: list[str], timeout: float) -> tuple[str, float]:
    """(stderr, wall seconds) of one `ovseg` process; RuntimeError on a failure."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ovseg_ros.bench.cli_bench", model, *argv],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"ovseg {' '.join(argv[:4])} ... exited {done.returncode}: "
                           f"{done.stderr.strip()[-400:]}")
    return done.stderr, time.perf_counter() - t0


def per_frame_gaps(out: Path) -> list[float]:
    """Seconds between consecutive frames' JSON files, the first SKIP gaps dropped."""
    stamps = sorted(p.stat().st_mtime_ns for p in out.glob("*.json"))
    return (np.diff(stamps)[SKIP:] / 1e9).tolist()


def bench_cli(model: str, model_argv: list[str], plain: PlainPipeline | None,
              size: tuple[int, int], frames: int, rounds: int,
              variants: tuple[str, ...] = tuple(VARIANTS), timeout: float = 1800.0
              ) -> dict[str, Any]:
    """model_argv: --model/--clip-weights/--heads/--input-size...; frames > SKIP + 1.
    Without the onnxruntime extra its variants are left out, and the result says so."""
    from ovseg_ros.core.backends import missing_onnx_modules

    missing = missing_onnx_modules()
    left_out = [v for v in variants if missing and VARIANTS[v] and v != "torch_fp32"]
    variants = tuple(v for v in variants if v not in left_out)
    images = sample_images(size)
    gaps: dict[str, list[float]] = {v: [] for v in variants}
    compute: dict[str, str] = {}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    plain_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ovseg-cli-bench-") as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        for i in range(frames):
            cv2.imwrite(str(folder / f"f{i:03d}.png"), images[i % len(images)][..., ::-1])
        common = ["--verbose", "segment", str(folder), "--prompts", "person, chair, table, door, "
                  "window, floor, wall, lamp, sofa, plant", "--cache-dir",
                  str(Path(tmp) / "cache"), *model_argv]
        for r in range(rounds):
            order = list(variants[r % len(variants):] + variants[:r % len(variants)])
            for name in order:
                out = Path(tmp) / f"{name}-{r}"
                err, seconds = _run_ovseg(model, [*common, "-o", str(out), *VARIANTS[name]],
                                          timeout)
                gaps[name] += per_frame_gaps(out)
                wall[name].append(seconds)
                compute[name] = next((ln.split("compute: ", 1)[1] for ln in err.splitlines()
                                      if "compute: " in ln), "?")
            if plain is not None:
                for i in range(frames):
                    t0 = time.perf_counter()
                    plain(images[i % len(images)])
                    if i >= SKIP + 1:
                        plain_s.append(time.perf_counter() - t0)
    frame = {n: float(np.median(g)) for n, g in gaps.items()}
    stages = {n: {"per_frame": summary(g)} for n, g in gaps.items()}
    ratios: dict[str, float] = {}
    exact = [n for n in EXACT if n in frame]
    if "defaults" in frame and exact:
        best = min(exact, key=frame.get)
        ratios["defaults_vs_fastest_exact"] = frame["defaults"] / frame[best]
    if plain_s:
        stages["authors_plain_fp32"] = {"per_frame": summary(plain_s)}
        for n in frame:
            ratios[f"authors_plain_fp32_vs_{n}"] = float(np.median(plain_s)) / frame[n]
    if left_out:
        compute["left_out"] = f"{', '.join(left_out)}: not installed ({', '.join(missing)})"
    return {"size": list(size), "frames": frames, "rounds": rounds, "compute": compute,
            "process_wall_s": {n: float(np.median(w)) for n, w in wall.items()},
            "stages": stages, "ratios": ratios}


def vocabulary_prompts(count: int) -> str:
    """`count` distinct class names, comma-separated."""
    return ", ".join(f"object {i}" for i in range(count))


def bench_cli_vocabulary(model: str, model_argv: list[str], size: tuple[int, int],
                         frames: int, rounds: int, counts: tuple[int, int] = (5, 250),
                         timeout: float = 3600.0) -> dict[str, Any]:
    """`ovseg segment` per frame (torch fp32, start-up and text encoding removed) with a
    small and a large vocabulary, alternating, in fresh processes sharing one cache: what the
    per-frame outputs cost as the class count grows (the model's own share is nearly flat)."""
    images = sample_images(size)
    gaps: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="ovseg-cli-vocab-") as tmp:
        folder = Path(tmp) / "frames"
        folder.mkdir()
        for i in range(frames):
            cv2.imwrite(str(folder / f"f{i:03d}.png"), images[i % len(images)][..., ::-1])
        for r in range(rounds):
            for n in (counts if r % 2 == 0 else counts[::-1]):
                out = Path(tmp) / f"p{n}-{r}"
                _run_ovseg(model, ["segment", str(folder), "--prompts", vocabulary_prompts(n),
                                   "--cache-dir", str(Path(tmp) / "cache"), *model_argv,
                                   *VARIANTS["torch_fp32"], "-o", str(out)], timeout)
                gaps[n] += per_frame_gaps(out)
    small, large = counts
    frame = {n: float(np.median(g)) for n, g in gaps.items()}
    return {"size": list(size), "frames": frames, "rounds": rounds, "counts": list(counts),
            "stages": {f"prompts_{n}": {"per_frame": summary(g)} for n, g in gaps.items()},
            "ratio_large_vs_small": frame[large] / frame[small]}


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": float(np.median(samples)), "p90": float(np.percentile(samples, 90)),
            "min": float(min(samples)), "n": len(samples)}


def main(argv: list[str]) -> int:
    if argv[0] == TINY:
        register_tiny()
    from ovseg_ros.cli.entry import main as ovseg

    return ovseg(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
