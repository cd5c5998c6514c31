"""The main-job demo: replay the shipped sample images (with synthetic registered depth) into
the segmentation node, over real ROS 2 topics in one process, and save the overlays and the
labelled point clouds (.ply) it publishes.

    python -m ovseg_ros.node.demo [--out demo_out] [--frames 6]

Uses the real weights when they can be had (network once, or files placed in the cache);
otherwise says so in one line and runs on seeded random weights, whose labels are meaningless.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2

from ovseg_ros.core.config import RANDOM
from ovseg_ros.core.weights import probe_weights
from ovseg_ros.geometry import SYNTHETIC_NOTE, write_ply
from ovseg_ros.io import decode_image
from ovseg_ros.io.media import write_png
from ovseg_ros.msg import Segmentation
from ovseg_ros.node.cloud_messages import points_from_msg
from ovseg_ros.node.executor import SteadyExecutor
from ovseg_ros.node.replay_node import ReplayNode
from ovseg_ros.node.runner import SpinThread, exit_process, shutdown_rclpy
from ovseg_ros.node.segment_node import SegmentNode
from ovseg_ros.settings.options import add_setting_options
from ovseg_ros.settings.parameters import BY_NAME

PROMPTS = ["person", "cat", "cup", "rocket", "grass", "sky", "building", "table"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ovseg-demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_out", help="folder for the saved overlays")
    p.add_argument("--frames", type=int, default=6, help="overlays to save before stopping")
    p.add_argument("--prompts", default=",".join(PROMPTS))
    add_setting_options(p, [BY_NAME[n] for n in ("model", "clip_weights", "heads",
                                                 "input_size")])
    p.add_argument("--rate", type=float, default=2.0, help="replay rate (Hz)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many s")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    clip_weights, heads = args.clip_weights, args.heads
    problem = probe_weights(args.model, clip_weights, heads)
    if problem:
        print(f"ovseg demo: real weights unavailable ({problem}); running on SEEDED RANDOM "
              "weights: the labels are meaningless.", flush=True)
        clip_weights, heads = RANDOM, RANDOM
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rclpy.init(args=[])
    saved: list[Path] = []
    clouds: list[Path] = []
    stats: list[Segmentation] = []
    done = threading.Event()
    spinner: SpinThread | None = None
    try:
        seg = SegmentNode(parameter_overrides=[
            Parameter("prompts", value=[p.strip() for p in args.prompts.split(",") if p.strip()]),
            Parameter("model", value=args.model),
            Parameter("clip_weights", value=clip_weights),
            Parameter("heads", value=heads),
            Parameter("input_size", value=args.input_size),
            Parameter("use_depth", value=True),
            Parameter("qos", value="reliable"),  # one process: nothing may be lost
        ])
        if (failed := seg.start_failure()) is not None:
            print(f"ovseg demo: the segmentation node did not start: {failed}", file=sys.stderr)
            return 1
        replay = ReplayNode(parameter_overrides=[Parameter("rate", value=args.rate),
                                                 Parameter("depth", value=True),
                                                 Parameter("qos", value="reliable")])
        viewer = rclpy.create_node("demo_viewer")

        def check_done() -> None:
            if len(saved) >= args.frames and len(clouds) >= args.frames:
                done.set()

        def on_overlay(msg: Image) -> None:
            if len(saved) < args.frames:
                rgb = decode_image(msg.encoding, msg.height, msg.width, msg.step,
                                   msg.is_bigendian, msg.data)
                saved.append(write_png(out / f"overlay_{len(saved):03d}.png", rgb))
            check_done()

        def on_points(msg: PointCloud2) -> None:  # the node's cloud, as any consumer reads it
            if len(clouds) < args.frames:
                path = out / f"points_{len(clouds):03d}.ply"
                write_ply(path, points_from_msg(msg), comments=[SYNTHETIC_NOTE])
                clouds.append(path)
            check_done()

        viewer.create_subscription(Image, "/ovseg/overlay", on_overlay, 10)
        viewer.create_subscription(PointCloud2, "/ovseg/points", on_points, 10)
        viewer.create_subscription(Segmentation, "/ovseg/segmentation", stats.append, 10)
        executor = SteadyExecutor(num_threads=3)
        for node in (seg, replay, viewer):
            executor.add_node(node)
        spinner = SpinThread(executor)
        start = time.monotonic()
        while not done.wait(0.5):
            if time.monotonic() - start > args.timeout:
                print(f"ovseg demo: timed out after {args.timeout:.0f} s", file=sys.stderr)
                return 1
        seg.close()
    finally:
        if spinner is not None:
            spinner.stop()
        shutdown_rclpy()
    ms = sorted(m.inference_ms for m in stats) or [0.0]
    print(f"ovseg demo: saved {len(saved)} overlays and {len(clouds)} point clouds (.ply, "
          f"from synthetic depth) to {out}/ "
          f"(inference median {ms[len(ms) // 2]:.0f} ms over {len(stats)} frames, "
          f"{stats[-1].frames_dropped if stats else 0} frames dropped)")
    top = sorted(stats[-1].classes, key=lambda c: -c.pixel_fraction)[:3] if stats else []
    print("last frame: " + ", ".join(f"{c.class_name} {c.pixel_fraction:.0%}" for c in top))
    return 0


if __name__ == "__main__":
    exit_process(main())
