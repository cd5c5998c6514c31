"""End-to-end node benchmark over real rclpy: a 30 Hz camera process -> the `ovseg` node ->
a probe subscriber.

The node runs in this process (its own executor thread, as in segment_node.main) and reports
its worker stages through its public `frame_listeners` hook: decode, inference (the pipeline
call) and publish (header copy, encodes, message building, publishing, overlay when watched);
decode + publish is the node's own overhead.
The camera is a separate process, as a driver would be (it still shares the CPU).
Latency is the probe's receive time minus the input stamp (ROS time: the same system clock).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ovseg_ros.node.frames import FrameReport

from .sections import CLASSES
from .timing import summary

TOPIC = "/ovseg_bench/image"


def _ros_env() -> None:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))


def bench_node(params: dict[str, Any], sizes: Sequence[tuple[int, int]], duration: float,
               warmup: float, rate_hz: float = 30.0, overlay_size: tuple[int, int] | None = None,
               thread_windows: int = 0) -> dict[str, Any]:
    """One node; per camera size one run. Extra runs at `overlay_size`: with an overlay
    subscriber, and (thread_windows > 0) 1 thread vs all, alternating windows."""
    _ros_env()
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from ovseg_ros.msg import Segmentation
    from ovseg_ros.node import messages
    from ovseg_ros.node import qos as qos_profiles
    from ovseg_ros.node.executor import SteadyExecutor
    from ovseg_ros.node.runner import SpinThread
    from ovseg_ros.node.segment_node import SegmentNode

    ctx = Context()
    rclpy.init(context=ctx)
    overrides = [Parameter(k, value=v) for k, v in {"prompts": CLASSES[:20], **params}.items()]
    node = SegmentNode(context=ctx, parameter_overrides=overrides,
                       cli_args=["--ros-args", "-r", f"image:={TOPIC}"])
    if (failed := node.start_failure()) is not None:
        raise RuntimeError(f"node did not start: {failed}")
    samples: dict[str, list[float]] = {"decode": [], "inference": [], "publish": []}

    def on_frame(report: FrameReport) -> None:
        samples["decode"].append(report.decode_s)
        samples["inference"].append(report.inference_s)
        samples["publish"].append(report.publish_s)

    node.frame_listeners.append(on_frame)
    probe = Node("ovseg_bench_probe", context=ctx)
    executors = [SteadyExecutor(num_threads=4, context=ctx),  # the node process's
                 SingleThreadedExecutor(context=ctx)]
    executors[0].add_node(node)
    executors[1].add_node(probe)
    spinners = [SpinThread(e) for e in executors]

    lock = threading.Lock()
    got: dict[str, Any] = {"lat": [], "node_lat": [], "dropped": 0}

    def on_seg(msg: Segmentation) -> None:
        now = probe.get_clock().now().nanoseconds * 1e-9
        with lock:
            got["lat"].append(now - messages.stamp_seconds(msg.header.stamp))
            got["node_lat"].append(msg.latency_ms / 1e3)
            got["dropped"] = msg.frames_dropped

    probe.create_subscription(Segmentation, "/ovseg/segmentation", on_seg, qos_profiles.outputs())
    full = torch.get_num_threads()

    def window(seconds: float) -> dict[str, Any]:
        """Clear the counters, wait, and copy what came in."""
        with lock:
            got.update(lat=[], node_lat=[])
            dropped0 = got["dropped"]
        for v in samples.values():
            v.clear()
        t0 = time.monotonic()
        time.sleep(seconds)
        with lock:
            snap = {"lat": list(got["lat"]), "node_lat": list(got["node_lat"]),
                    "dropped": got["dropped"] - dropped0, "elapsed": time.monotonic() - t0}
        snap["stages"] = {k: list(v) for k, v in samples.items()}
        return snap

    results: dict[str, Any] = {}
    plan: list[tuple[tuple[int, int], str]] = [(s, "") for s in sizes]
    if overlay_size:
        plan.append((overlay_size, "overlay"))
        if thread_windows > 0 and full > 1:
            plan.append((overlay_size, "threads"))
    try:
        for size, kind in plan:
            camera = subprocess.Popen(
                [sys.executable, "-m", "ovseg_ros.bench.camera", f"{size[1]}x{size[0]}",
                 str(rate_hz), TOPIC], env=dict(os.environ))
            sub = (probe.create_subscription(Image, "/ovseg/overlay", lambda _: None,
                                             qos_profiles.outputs()) if kind == "overlay" else None)
            try:
                with lock:
                    got["lat"] = []
                deadline = time.monotonic() + 60.0  # camera start-up and discovery
                while not got["lat"] and time.monotonic() < deadline and camera.poll() is None:
                    time.sleep(0.05)
                time.sleep(warmup)
                key = f"{size[1]}x{size[0]}" + (f"_{kind}" if kind else "")
                if kind != "threads":
                    results[key] = _summarise(window(duration), rate_hz)
                    continue
                runs: dict[int, list[dict[str, Any]]] = {full: [], 1: []}
                for i in range(2 * thread_windows):
                    threads = full if i % 2 == 0 else 1
                    # A dynamic parameter, applied by the worker before its next frame.
                    node.set_parameters([Parameter("threads", value=threads)])
                    time.sleep(min(warmup, 2.0))  # let the frame in flight finish
                    runs[threads].append(window(duration / 2))
                node.set_parameters([Parameter("threads", value=0)])
                for threads, snaps in runs.items():
                    results[f"{key}_{threads}t"] = _summarise(_merge(snaps), rate_hz)
            finally:
                camera.terminate()
                camera.wait(10)
                if sub is not None:
                    probe.destroy_subscription(sub)
                node.worker.wait_idle(30.0)
    finally:
        node.close(timeout=30.0)
        for spinner in spinners:
            spinner.stop(timeout=1.0)
        node.destroy_node()
        probe.destroy_node()
        ctx.try_shutdown()
    return results


def _merge(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"lat": [], "node_lat": [], "dropped": 0, "elapsed": 0.0,
                           "stages": {}}
    for s in snaps:
        for k in ("lat", "node_lat"):
            out[k] += s[k]
        out["dropped"] += s["dropped"]
        out["elapsed"] += s["elapsed"]
        for k, v in s["stages"].items():
            out["stages"].setdefault(k, []).extend(v)
    return out


def _summarise(snap: dict[str, Any], rate_hz: float) -> dict[str, Any]:
    stages = snap["stages"]
    n = min(len(v) for v in stages.values())
    if n == 0 or not snap["lat"]:
        return {"error": "no output received"}
    infer, decode = np.asarray(stages["inference"][:n]), np.asarray(stages["decode"][:n])
    publish = np.asarray(stages["publish"][:n])
    overhead = decode + publish  # the node's own work: decode, encodes, messages, publishing
    return {
        "rate_hz": rate_hz,
        "output_fps": len(snap["lat"]) / snap["elapsed"],
        "input_fps": (len(snap["lat"]) + snap["dropped"]) / snap["elapsed"],  # reached the node
        "dropped": int(snap["dropped"]),
        "frames": len(snap["lat"]),
        "stages": {"latency_stamp_to_receive": summary(snap["lat"]),
                   "latency_node_reported": summary(snap["node_lat"]),
                   "decode": summary(list(decode)), "inference": summary(list(infer)),
                   "publish": summary(list(publish)),
                   "worker_total": summary(list(overhead + infer))},
        "ratios": {"node_overhead_vs_inference": float(np.median(overhead / infer))},
    }
