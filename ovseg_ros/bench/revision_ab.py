"""`--only cli_ab --against REV`: `ovseg segment` per frame from this checkout beside the same
command from another git revision, in one run, on the same frames.

The other revision is checked out into a temporary git worktree and run with its own package
first on PYTHONPATH (the same venv, so the same torch and libraries). Each side is its own
process per round, the order swapped every round; per frame = the median gap between
consecutive frames' finished outputs (`cli_bench.per_frame_gaps`), start-up excluded. Each side
keeps its own cache folder (their text caches differ in format), filled by a first, uncounted
run, so `precision: auto`'s probe and the ONNX export are start-up, not frames.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .cli_bench import per_frame_gaps, summary, vocabulary_prompts
from .images import sample_images

ROOT = Path(__file__).resolve().parents[2]


def _worktree(rev: str, where: Path) -> Path:
    """A detached worktree of `rev` (RuntimeError when it is not a revision of this repo)."""
    done = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where),
                           rev], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cannot check out {rev}: {done.stderr.strip()[-300:]}")
    return where


def _segment(tree: Path, model: str, argv: list[str], timeout: float) -> float:
    """One `ovseg segment` process from `tree`'s package; its wall seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tree), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ovseg_ros.bench.cli_bench", model, *argv],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=tree)
    if done.returncode != 0:
        raise RuntimeError(f"{tree.name}: ovseg segment exited {done.returncode}: "
                           f"{done.stderr.strip()[-400:]}")
    return time.perf_counter() - t0


def bench_revision_ab(rev: str, model: str, model_argv: list[str], size: tuple[int, int],
                      frames: int, rounds: int, prompts: int = 10,
                      timeout: float = 1800.0) -> dict[str, Any]:
    """This checkout ("now") against revision `rev` ("then"); ratio then / now per frame
    (above 1: this checkout is faster)."""
    images = sample_images(size)
    gaps: dict[str, list[float]] = {"now": [], "then": []}
    wall: dict[str, list[float]] = {"now": [], "then": []}
    with tempfile.TemporaryDirectory(prefix="ovseg-ab-") as tmp_name:
        tmp = Path(tmp_name)
        trees = {"now": ROOT, "then": _worktree(rev, tmp / "then")}
        try:
            folder = tmp / "frames"
            folder.mkdir()
            for i in range(frames):
                cv2.imwrite(str(folder / f"f{i:03d}.png"), images[i % len(images)][..., ::-1])
            base = ["segment", str(folder), "--prompts", vocabulary_prompts(prompts),
                    *model_argv]
            for side, tree in trees.items():  # fill each side's cache: start-up, not frames
                _segment(tree, model, [*base, "--cache-dir", str(tmp / f"cache-{side}"), "-o",
                                       str(tmp / f"warm-{side}")], timeout)
            for r in range(rounds):
                for side in (("now", "then") if r % 2 == 0 else ("then", "now")):
                    out = tmp / f"{side}-{r}"
                    wall[side].append(_segment(trees[side], model, [
                        *base, "--cache-dir", str(tmp / f"cache-{side}"), "-o", str(out)],
                        timeout))
                    gaps[side] += per_frame_gaps(out)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tmp / "then")], capture_output=True)
    frame = {side: float(np.median(g)) for side, g in gaps.items()}
    return {"against": rev, "size": list(size), "frames": frames, "rounds": rounds,
            "prompts": prompts, "model_argv": model_argv,
            "stages": {side: {"per_frame": summary(g)} for side, g in gaps.items()},
            "process_wall_s": {side: float(np.median(w)) for side, w in wall.items()},
            "ratios": {"then_over_now_per_frame": frame["then"] / frame["now"]}}
