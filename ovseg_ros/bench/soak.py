"""Memory soak: the `ovseg` node as a subprocess, fed by a replay publisher, its vocabulary
changed every few seconds; prints the node's RSS over time and a verdict on its growth.

    python -m ovseg_ros.bench.soak --minutes 10 --prompt-change-s 5            # tiny model
    python -m ovseg_ros.bench.soak --minutes 10 --prompt-change-s 5 --model ViT-B-16

Weights are seeded random (real architecture): memory does not depend on weight values. Each
vocabulary is a rotation of a fixed list plus `--new-names` names never used before, so the
text-embedding cache keeps growing until its bound (core/text.py, max_entries) and evicts.
RSS is VmRSS from /proc/<pid>/status, sampled after `--warmup-s` of streaming (allocator arenas,
DDS buffers and caches fill up first). RSS swings by tens of MB from one sample to the next
(temporary tensors returned to the system), so the verdict uses its baseline, the lowest RSS of
the last `--window-s` seconds, which a leak raises: its least-squares slope over the second
half of the sampled run, in MB/min. The raw slope is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ovseg_ros.core.tiny import TINY
from ovseg_ros.settings.options import add_setting_options
from ovseg_ros.settings.parameters import BY_NAME

BASE = ["person", "chair", "table", "door", "floor", "wall", "window", "lamp", "sofa", "plant",
        "cup", "bottle", "bag", "screen", "bed", "shelf"]
NS = f"/soak{os.getpid()}"  # this run's namespace: runs on one ROS domain never mix
ANSWER_TIMEOUT_S = 120.0  # a set_prompts with new names answers once they are encoded


def vocabulary(k: int, new: int) -> list[str]:
    """The k-th vocabulary: 8 rotating base names and `new` names unique to this change."""
    base = [BASE[(k + i) % len(BASE)] for i in range(8)]
    return base + [f"soak item {k} {j}" for j in range(new)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """(slope in MB/min, fitted growth in MB) of (seconds, MB) samples, least squares."""
    t = np.array([s[0] for s in samples])
    y = np.array([s[1] for s in samples])
    if len(t) < 2 or np.ptp(t) == 0:
        return 0.0, 0.0
    slope = float(np.polyfit(t, y, 1)[0])  # MB/s
    return slope * 60.0, slope * float(np.ptp(t))


def baseline(samples: list[tuple[float, float]], window_s: float) -> list[tuple[float, float]]:
    """(t, lowest RSS over [t - window_s, t]) for every sample."""
    return [(t, min(r for u, r in samples if t - window_s <= u <= t)) for t, _ in samples]


def node_arguments(args: argparse.Namespace) -> list[str]:
    """ROS arguments of the soaked node: namespace and parameters."""
    params = {"model": args.model, "clip_weights": "random", "heads": "random",
              "device": args.device, "precision": args.precision,
              "input_size": str(args.input_size), "prompts": json.dumps(vocabulary(0, 0)),
              # Best-effort VGA frames between processes are mostly lost to fragmentation
              # with the default Fast DDS transports here: reliable on both ends.
              "qos": "reliable"}
    argv = ["--ros-args", "-r", f"__ns:={NS}"]
    for k, v in params.items():
        argv += ["-p", f"{k}:={v}"]
    return argv


def run_node() -> None:
    """--node: the node's own entry point, with the tiny benchmark model registered."""
    from ovseg_ros.core.tiny import register_tiny
    from ovseg_ros.node.segment_node import main

    register_tiny()
    sys.exit(main())


class Driver:
    """Replay publisher, segmentation counter and set_prompts client on one rclpy context."""

    def __init__(self, domain_id: int, size: tuple[int, int], rate_hz: float) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.node import Node
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from ovseg_ros.io import encode_rgb
        from ovseg_ros.msg import Segmentation
        from ovseg_ros.node import messages
        from ovseg_ros.node import qos as qos_profiles
        from ovseg_ros.node.executor import SteadyExecutor
        from ovseg_ros.srv import SetPrompts

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("soak_driver", context=self.context)
        self.pub = self.node.create_publisher(Image, f"{NS}/image", qos_profiles.reliable(1))
        self.outputs = 0
        self.node.create_subscription(Segmentation, f"{NS}/ovseg/segmentation",
                                      self._on_seg, qos_profiles.outputs())
        self.client = self.node.create_client(SetPrompts, f"{NS}/ovseg/set_prompts")
        self.request = SetPrompts.Request
        rgb = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
        self.frame = messages.image_msg(encode_rgb(rgb), Header(frame_id="soak"))
        self.executor = SteadyExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.executor.spin, daemon=True),
                         threading.Thread(target=self._publish, args=(rate_hz,), daemon=True)]
        for t in self._threads:
            t.start()

    def _on_seg(self, msg: Any) -> None:
        self.outputs += 1

    def _publish(self, rate_hz: float) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.frame.header.stamp = self.node.get_clock().now().to_msg()
            self.pub.publish(self.frame)
            next_t += 1.0 / rate_hz
            time.sleep(max(0.0, next_t - time.monotonic()))

    def start_set_prompts(self, names: list[str]) -> Callable[[], tuple[bool, str] | None]:
        """Send a set_prompts without waiting; poll() -> None until answered, then (success,
        message). The node answers a change with new names when they are encoded, which with
        frames flowing takes seconds: RSS is sampled meanwhile."""
        future = self.client.call_async(self.request(prompts=names))

        def poll() -> tuple[bool, str] | None:
            if not future.done():
                return None
            res = future.result()
            return bool(res.success), res.message
        return poll

    def close(self) -> None:
        self._stop.set()
        self.executor.shutdown(timeout_sec=2.0)
        self.context.try_shutdown()


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; returns samples, counters and the verdict numbers."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = args.domain_id or int(os.environ.get("ROS_DOMAIN_ID") or 10 + os.getpid() % 90)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    # This module again, in --node mode (no shell; see test_security.py).
    proc = subprocess.Popen([sys.executable, "-m", "ovseg_ros.bench.soak", "--node",
                             *node_arguments(args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(ln.rstrip() for ln in proc.stdout),
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    try:
        while not any("ready:" in ln for ln in lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("node did not start:\n" + "\n".join(lines[-20:]))
            time.sleep(0.2)
    except BaseException:  # also a test timeout or Ctrl-C: never leave the node running
        proc.kill()
        raise
    w, h = (int(v) for v in args.size.lower().split("x"))
    driver = Driver(domain, (h, w), args.rate)
    samples: list[tuple[float, float]] = []
    changes = failed = 0
    change_s: list[float] = []
    pending: tuple[Callable[[], tuple[bool, str] | None], float] | None = None
    if not driver.client.wait_for_service(timeout_sec=ANSWER_TIMEOUT_S):
        raise RuntimeError("set_prompts not available")
    duration = args.minutes * 60.0
    t0 = next_change = next_print = time.monotonic() + args.warmup_s
    next_change -= args.warmup_s  # vocabulary changes run during the warm-up too
    try:
        while (now := time.monotonic()) - t0 < duration:
            if proc.poll() is not None:
                raise RuntimeError("node exited:\n" + "\n".join(lines[-20:]))
            if now >= t0:
                samples.append((now - t0, rss_mb(proc.pid)))
            if pending is not None and (answer := pending[0]()) is not None:
                ok, why = answer
                change_s.append(time.monotonic() - pending[1])
                failed += not ok
                if not ok:
                    print(f"  set_prompts refused/failed: {why}", flush=True)
                pending = None
            elif pending is not None and time.monotonic() - pending[1] > ANSWER_TIMEOUT_S:
                failed += 1
                print(f"  set_prompts: no answer in {ANSWER_TIMEOUT_S:.0f} s", flush=True)
                pending = None
            if now >= next_change and pending is None:  # one change at a time
                changes += 1
                pending = (driver.start_set_prompts(vocabulary(changes, args.new_names)),
                           time.monotonic())
                next_change = max(next_change + args.prompt_change_s, now)
            if now >= next_print and samples:
                print(f"t={now - t0:6.0f} s  rss={samples[-1][1]:8.1f} MB  "
                      f"outputs={driver.outputs:6d}  vocabulary changes={changes}", flush=True)
                next_print += args.print_s
            time.sleep(max(0.0, args.sample_s - (time.monotonic() - now)))
    finally:
        driver.close()
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = -9
    base = baseline(samples, args.window_s)
    half = [s for s in base if s[0] >= duration / 2]
    slope, growth = slope_mb_per_min(half)
    raw_slope, _ = slope_mb_per_min([s for s in samples if s[0] >= duration / 2])
    _, first_growth = slope_mb_per_min([s for s in base if s[0] < duration / 2])
    return {"model": args.model, "minutes": args.minutes, "samples": samples,
            "rss_start_mb": samples[0][1], "rss_end_mb": samples[-1][1],
            "rss_max_mb": max(s[1] for s in samples), "slope_second_half_mb_per_min": slope,
            "growth_second_half_mb": growth, "growth_first_half_mb": first_growth,
            "raw_slope_second_half_mb_per_min": raw_slope,
            "baseline_start_mb": base[0][1], "baseline_end_mb": base[-1][1],
            "outputs": driver.outputs, "vocabulary_changes": changes, "changes_failed": failed,
            "change_s_max": max(change_s, default=0.0), "node_rc": rc,
            "distinct_names": len(BASE) + changes * args.new_names,
            "node_log_tail": lines[-10:]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ovseg_ros.bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--prompt-change-s", type=float, default=5.0)
    p.add_argument("--model", default=TINY,
                   help="open_clip model (random weights); default: the tiny benchmark model")
    add_setting_options(p, [BY_NAME[n] for n in ("device", "precision", "input_size")])
    p.add_argument("--size", default="640x480", help="camera frames, WxH")
    p.add_argument("--rate", type=float, default=10.0, help="camera rate in Hz")
    p.add_argument("--new-names", type=int, default=40, help="never-seen names per change")
    p.add_argument("--warmup-s", type=float, default=10.0, help="streaming before sampling")
    p.add_argument("--sample-s", type=float, default=1.0)
    p.add_argument("--window-s", type=float, default=5.0, help="baseline window")
    p.add_argument("--print-s", type=float, default=30.0)
    p.add_argument("--domain-id", type=int, default=0)
    p.add_argument("--json", help="also write the result (with every sample) here")
    p.add_argument("--node", action="store_true", help=argparse.SUPPRESS)  # internal
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--node" in argv[:1]:
        run_node()
    args, _ = build_parser().parse_known_args(argv)
    result = soak(args)
    r = result
    print(f"RSS {r['rss_start_mb']:.0f} -> {r['rss_end_mb']:.0f} MB (max {r['rss_max_mb']:.0f}),"
          f" baseline {r['baseline_start_mb']:.0f} -> {r['baseline_end_mb']:.0f} MB (first half "
          f"{r['growth_first_half_mb']:+.1f} MB); {r['outputs']} outputs, "
          f"{r['vocabulary_changes']} vocabulary changes ({r['changes_failed']} failed, slowest "
          f"{r['change_s_max']:.2f} s), {r['distinct_names']} distinct names")
    print(f"verdict: baseline RSS over the second half {r['slope_second_half_mb_per_min']:+.2f} "
          f"MB/min ({r['growth_second_half_mb']:+.1f} MB); raw samples "
          f"{r['raw_slope_second_half_mb_per_min']:+.2f} MB/min")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["changes_failed"] == 0 and result["node_rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
