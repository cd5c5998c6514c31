"""Benchmark section `bag`: `ovseg bag` per frame (--reps frames, at least 4), its bag I/O +
message building next to inference in the same run, frames/s at --batch 1 and 2, and (full
runs, `ray` installed) a local Ray cluster with 1 vs 2 workers on the same 2 bags plus Ray's
start-up cost (not in --smoke: the actors' start-up alone takes a minute on 2 cores)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ovseg_ros.core import FramePipeline, KeyframeConfig, Segmenter


class _Timed:
    """A FramePipeline stand-in that times process_batch (the inference) of the real one."""

    def __init__(self, pipeline: FramePipeline) -> None:
        self.pipeline, self.inference_s = pipeline, 0.0
        self.config, self.segmenter = pipeline.config, pipeline.segmenter

    def process_batch(self, frames, primary):
        t0 = time.perf_counter()
        out = self.pipeline.process_batch(frames, primary)
        self.inference_s += time.perf_counter() - t0
        return out


def bench_bag(seg: Segmenter, size: tuple[int, int], frames: int, model_argv: list[str],
              ray_workers: tuple[int, ...] = ()) -> dict[str, Any]:
    from ovseg_ros.bag.process import BagJob, BagSettings
    from ovseg_ros.bag.sample import write_sample_bag
    from ovseg_ros.settings.parameters import NodeConfig

    tmp = Path(tempfile.mkdtemp(prefix="ovseg-bagbench-"))
    try:
        src = write_sample_bag(tmp / "in", frames=frames, size=max(size), depth=False)
        pipeline = FramePipeline(seg, KeyframeConfig(asynchronous=False))
        out: dict[str, Any] = {"frames": frames, "frame_size": f"{size[1]}x{size[0]} (long side; "
                                                                "aspect of samples/)"}
        for batch in (1, 2):
            timed = _Timed(pipeline)
            job = BagJob(timed, BagSettings(node=NodeConfig(prompts=list(seg.snapshot.names)),
                                            batch=batch))
            t0 = time.perf_counter()
            report = job.run(src, tmp / f"out{batch}")
            wall = time.perf_counter() - t0
            other = wall - timed.inference_s
            out[f"batch{batch}"] = {
                "frames_per_s": report.total / wall,
                "inference_ms_per_frame": timed.inference_s / report.total * 1e3,
                "bag_io_and_messages_ms_per_frame": other / report.total * 1e3,
                "bag_share_of_frame_pct": 100.0 * other / wall}
        # For the report's tables: per-frame means over the run (one sample each), seconds.
        out["stages"] = {f"batch{b}": {
            "inference": _one(out[f"batch{b}"]["inference_ms_per_frame"] / 1e3, frames),
            "bag_io_and_messages": _one(out[f"batch{b}"]["bag_io_and_messages_ms_per_frame"]
                                        / 1e3, frames)} for b in (1, 2)}
        out["ratios"] = {"bag_share_of_frame_pct": out["batch1"]["bag_share_of_frame_pct"],
                         "fps_batch2_over_batch1": out["batch2"]["frames_per_s"]
                         / out["batch1"]["frames_per_s"]}
        if ray_workers:
            out["ray"] = _bench_ray(src, tmp, model_argv, ray_workers)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _one(value: float, n: int) -> dict[str, float]:
    return {"median": value, "p90": value, "min": value, "n": n}


def _bench_ray(src: Path, tmp: Path, model_argv: list[str],
               workers: tuple[int, ...]) -> dict[str, Any]:
    try:
        import ray
    except ImportError:
        return {"skipped": "ray not installed (pip install ray)"}
    from ovseg_ros.bag.fleet import run_ray
    from ovseg_ros.bag.progress import Progress

    bags = []
    for i in range(2):
        shutil.copytree(src, tmp / f"fleet{i}")
        bags.append(tmp / f"fleet{i}")
    threads = max(1, (os.cpu_count() or 2) // max(workers))
    out: dict[str, Any] = {"bags": len(bags), "threads_per_worker": threads,
                           "cpus": os.cpu_count()}
    t0 = time.perf_counter()
    ray.init(num_cpus=max(workers), include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    out["ray_init_s"] = time.perf_counter() - t0
    try:
        for n in workers:
            argv = [str(b) for b in bags] + ["-o", str(tmp / f"ray{n}"), *model_argv,
                                             "--threads", str(threads)]
            t0 = time.perf_counter()
            reports, extra = run_ray("local", argv, bags, tmp / f"ray{n}", workers=n,
                                     gpus_per_worker=0.0, cpus_per_worker=1.0,
                                     overwrite=True, progress=Progress(bar=False, desc="ray"),
                                     total_frames=0)
            wall = time.perf_counter() - t0
            frames = sum(r.total for r in reports)
            out[f"workers{n}"] = {"wall_s": wall, "actor_startup_s": extra["startup_s"],
                                  "frames_per_s": frames / wall,
                                  "frames_per_s_after_startup":
                                      frames / max(1e-9, wall - extra["startup_s"])}
        if len(workers) == 2:
            a, b = (out[f"workers{n}"]["frames_per_s_after_startup"] for n in workers)
            out["ratios"] = {"speedup_2_vs_1_workers_after_startup": b / a}
    finally:
        ray.shutdown()
    return out
