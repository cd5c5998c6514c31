"""Memory across the node's lifecycle, in a fresh process: RSS (and CUDA memory) before
configure, after configure, after activate + N frames, after deactivate and after cleanup,
with the time each transition took. Target: cleanup returns to within 150 MB of the RSS before
configure (the libraries stay loaded).

Child: `python -m ovseg_ros.bench.lifecycle MODEL DEVICE PRECISION INPUT_SIZE FRAMES` prints
one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from ovseg_ros.core.tiny import TINY, register_tiny

from .timing import current_rss_mb

TOPIC = "/ovseg_lifecycle_bench/image"
TARGET_MB = 150.0


def bench_lifecycle_memory(model: str, device: str, precision: str, input_size: int,
                           frames: int = 20, timeout: float = 900.0) -> dict[str, Any]:
    """Run the child and add the target check."""
    done = subprocess.run([sys.executable, "-m", "ovseg_ros.bench.lifecycle", model, device,
                           precision, str(input_size), str(frames)],
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"child failed ({done.returncode}): {done.stderr.strip()[-400:]}"}
    out = json.loads(lines[-1])
    rss = out["rss_mb"]
    out["cleanup_minus_before_configure_mb"] = rss["after_cleanup"] - rss["before_configure"]
    out["target_mb"] = TARGET_MB
    out["target_met"] = out["cleanup_minus_before_configure_mb"] <= TARGET_MB
    return out


def _gpu_mb(device: str) -> dict[str, float] | None:
    import torch

    if not torch.cuda.is_available() or not device.startswith(("cuda", "auto")):
        return None
    return {"allocated": torch.cuda.memory_allocated() / 2**20,
            "reserved": torch.cuda.memory_reserved() / 2**20}


def child(model: str, device: str, precision: str, input_size: int, frames: int) -> None:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ovseg_ros.io import encode_rgb
    from ovseg_ros.node import messages
    from ovseg_ros.node import qos as qos_profiles
    from ovseg_ros.node.runner import spin_executor
    from ovseg_ros.node.segment_node import SegmentNode

    from .images import sample_images

    if model == TINY:
        register_tiny()
    ctx = Context()
    rclpy.init(context=ctx)
    values = {"autostart": False, "model": model, "clip_weights": "random", "heads": "random",
              "device": device, "precision": precision, "input_size": input_size,
              "prompts": ["person", "chair", "table"], "qos": "reliable"}
    node = SegmentNode(context=ctx, parameter_overrides=[Parameter(k, value=v)
                                                         for k, v in values.items()],
                       cli_args=["--ros-args", "-r", f"image:={TOPIC}"])
    helper = Node("ovseg_lifecycle_bench", context=ctx)
    pub = helper.create_publisher(Image, TOPIC, qos_profiles.reliable(1))
    got = threading.Semaphore(0)
    helper.create_subscription(Image, "/ovseg/labels", lambda _: got.release(),
                               qos_profiles.outputs())
    executor = MultiThreadedExecutor(num_threads=4, context=ctx)
    executor.add_node(node)
    executor.add_node(helper)
    threading.Thread(target=spin_executor, args=(executor,), daemon=True).start()
    rss: dict[str, float] = {}
    gpu: dict[str, Any] = {}
    seconds: dict[str, float] = {}

    def mark(name: str) -> None:
        rss[name] = current_rss_mb()
        gpu[name] = _gpu_mb(device)

    def transition(name: str, trigger) -> None:
        t0 = time.perf_counter()
        trigger()
        seconds[name] = time.perf_counter() - t0

    msg = messages.image_msg(encode_rgb(sample_images((480, 640), 1)[0]), Header())
    mark("before_configure")
    transition("configure", node.trigger_configure)
    mark("after_configure")
    transition("activate", node.trigger_activate)
    received, deadline = 0, time.monotonic() + 600.0
    while received < frames and time.monotonic() < deadline:
        pub.publish(msg)
        if got.acquire(timeout=30.0):  # one frame at a time: every frame is segmented
            received += 1
    mark("after_activate_and_frames")
    transition("deactivate", node.trigger_deactivate)
    mark("after_deactivate")
    transition("cleanup", node.trigger_cleanup)
    time.sleep(0.5)  # let a keyframe or worker thread that held a reference finish
    mark("after_cleanup")
    out = {"model": model, "frames": received, "rss_mb": rss, "transition_s": seconds,
           "final_state": node.state}
    if any(v is not None for v in gpu.values()):
        out["cuda_mb"] = gpu
    print(json.dumps(out), flush=True)
    os._exit(0)  # skip the native teardown: the numbers are out


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
