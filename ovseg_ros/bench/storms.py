"""The `storms` section: does a busy node keep its frames and answer its lifecycle?

A node process (the product's own entry, `segment_node.main`: a 4-thread executor) labels a
camera published at 5 Hz from this process, which counts the ~/segmentation messages per
second. Client processes (`storm_clients.py`) storm it while they poll ~/get_state and
~/get_prompts ten times a second each:

- quiet: the probes only (the baseline frames/s);
- query_cached: 8 threads of ~/query with phrases the node has encoded, 12 s;
- query_new: 4 threads of ~/query, each phrase never sent before, 12 s;
- set_prompts: 8 threads of ~/set_prompts, about one call in ten with a never-seen name, 20 s;
- the same three, 12 s each, with impolite clients (`*_impolite`): they call again at once
  after a refusal instead of waiting the time it names;
- quiet_after: the probes only again (did the machine's load change meanwhile?).

Per phase: frames/s and its ratio to quiet, get_state / get_prompts latency (p50, p99, max),
per stormed service the requests sent, answered with success, refused with a reason, and
lost (no answer within the client's timeout), and the CPU the node process and the client
processes used (cores: CPU seconds per second), and frames per CPU second of the node.
`StormRig` is also what the storm tests run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from .storm_clients import CACHED_PHRASES, KNOWN

# kind: (threads, seconds): what first showed a node losing its frames to its clients
STORMS = {"query_cached": (8, 12.0), "query_new": (4, 12.0), "set_prompts": (8, 20.0)}
# The same with clients that never back off (phases named `<kind>_impolite`).
IMPOLITE = {"query_cached": (8, 12.0), "query_new": (4, 12.0), "set_prompts": (8, 12.0)}
QUIET_S = 10.0
# Each request's timeout in the clients: a set_prompts was once answered after 26.9 s;
# get_state and get_prompts are judged against 1 s.
CLIENT_TIMEOUT_S = 30.0
START_PROMPTS = ["cat", "dog", "car"]


def _ros_env() -> None:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(f"'{v}'" for v in value) + "]"
    return str(value)


class StormRig:
    """A node process on `params` in namespace `ns`, a camera at `rate_hz` and a counter of
    its ~/segmentation messages in this process. Use as a context manager."""

    def __init__(self, params: Mapping[str, Any], ns: str = "/storm",
                 size: tuple[int, int] = (240, 320), rate_hz: float = 5.0,
                 register: str = "", start_timeout: float = 600.0,
                 source_dir: str | None = None):
        """source_dir: run the node from the ovseg_ros of another source tree (a baseline
        checkout whose generated interfaces match), else from the installed one."""
        self.params = {"prompts": START_PROMPTS, "qos": "reliable", **params}
        self.source_dir = source_dir
        self.ns, self.size, self.rate_hz = ns, size, rate_hz
        self.register, self.start_timeout = register, start_timeout
        self.stamps: list[float] = []  # stamp (s) of each received segmentation
        self.arrived: dict[tuple[int, int], float] = {}  # its (sec, nanosec) -> time.time()
        self.inference_ms: dict[tuple[int, int], float] = {}  # its (sec, nanosec) -> the node's
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.camera_on = threading.Event()  # clear: the camera pauses (storms_ab.py)
        self.camera_on.set()
        # Set by __enter__: the node process and its log, and this process's ROS side.
        self.log: Any = None
        self.proc: subprocess.Popen | None = None
        self.ctx: Any = None
        self.node: Any = None
        self.executor: Any = None
        self.spinner: Any = None

    # ---- set-up ----------------------------------------------------------------------------

    def __enter__(self) -> StormRig:
        _ros_env()
        code = ["import sys"]
        if self.register:
            code.append(f"from ovseg_ros.core.tiny import register_tiny; "
                        f"register_tiny(name={self.register!r})")
        code += ["from ovseg_ros.node.segment_node import main", "sys.exit(main())"]
        ros_args = ["-r", f"__ns:={self.ns}"]
        for key, value in self.params.items():
            ros_args += ["-p", f"{key}:={_param(value)}"]
        # Into a file, not a pipe: a reader that falls behind (this process descheduled on a
        # loaded machine) would fill the pipe and block the node inside a log call.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ovseg-storm-node-", suffix=".log")
        if self.source_dir:
            code.insert(1, f"sys.path.insert(0, {self.source_dir!r})")
        self.proc = subprocess.Popen([sys.executable, "-c", "\n".join(code), "--ros-args",
                                      *ros_args], stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True)
        deadline = time.monotonic() + self.start_timeout
        while not any("ready: active" in ln for ln in list(self.lines)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the node did not start:\n" + "\n".join(self.lines[-20:]))
            time.sleep(0.1)
        self._start_ros()
        return self

    @property
    def lines(self) -> list[str]:
        """The node's output so far."""
        with open(self.log.name) as f:
            return f.read().splitlines()

    def _start_ros(self) -> None:
        import numpy as np
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from ovseg_ros.io import encode_rgb
        from ovseg_ros.msg import Segmentation
        from ovseg_ros.node import messages
        from ovseg_ros.node import qos as qos_profiles
        from ovseg_ros.node.runner import SpinThread

        self.ctx = Context()
        rclpy.init(context=self.ctx)
        self.node = Node("ovseg_storm_rig", context=self.ctx)
        self.node.create_subscription(Segmentation, f"{self.ns}/ovseg/segmentation",
                                      self._on_segmentation, qos_profiles.outputs())
        pub = self.node.create_publisher(Image, f"{self.ns}/image", qos_profiles.reliable(2))
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.spinner = SpinThread(self.executor)
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 255, (*self.size, 3), dtype=np.uint8)
        image = encode_rgb(rgb)
        clock = self.node.get_clock()

        def camera() -> None:
            nxt = time.monotonic()
            while not self._stop.is_set():
                if not self.camera_on.is_set():
                    self.camera_on.wait(0.1)
                    nxt = time.monotonic()
                    continue
                pub.publish(messages.image_msg(image, Header(stamp=clock.now().to_msg())))
                nxt += 1.0 / self.rate_hz
                self._stop.wait(max(nxt - time.monotonic(), 0.0))

        threading.Thread(target=camera, daemon=True).start()

    def _on_segmentation(self, msg: Any) -> None:
        now = time.time()  # the frame's last message: its publication, one local hop later
        with self._lock:
            self.stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            self.arrived[key], self.inference_ms[key] = now, msg.inference_ms

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def wait_frames(self, count: int = 3, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        start = len(self.stamps)
        while len(self.stamps) - start < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 120.0) -> Any:
        client = self.node.create_client(srv_type, f"{self.ns}/ovseg/{name}")
        try:
            if not client.wait_for_service(timeout_sec=30.0):
                raise RuntimeError(f"{name} is not available")
            done = threading.Event()
            future = client.call_async(request)
            future.add_done_callback(lambda _: done.set())
            if not done.wait(timeout):
                raise RuntimeError(f"{name} did not answer in {timeout} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def warm_up(self) -> None:
        """Frames flowing; every name the storms reuse encoded (KNOWN, CACHED_PHRASES); the
        start-up vocabulary back."""
        from ovseg_ros.srv import Query, SetPrompts

        if not self.wait_frames(3):
            raise RuntimeError("no frames labelled:\n" + "\n".join(self.lines[-20:]))
        for prompts in (KNOWN, START_PROMPTS):
            res = self.call(SetPrompts, "set_prompts", SetPrompts.Request(prompts=prompts))
            if not res.success:
                raise RuntimeError(f"set_prompts {prompts}: {res.message}")
        while True:
            res = self.call(Query, "query", Query.Request(phrases=CACHED_PHRASES))
            if res.success:
                break
            time.sleep(0.5)

    # ---- one phase -------------------------------------------------------------------------

    def phase(self, kind: str, threads: int, seconds: float,
              timeout: float = CLIENT_TIMEOUT_S, polite: bool = True) -> dict[str, Any]:
        """Run the clients of `kind` ("probe": none but the probes) for `seconds`; frames/s
        over that window, the CPU the node and the clients used, and the clients' report.
        polite=False: the storm's clients call again at once after a refusal."""
        def clients(what: str, count: int, *extra: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "ovseg_ros.bench.storm_clients", f"{self.ns}/ovseg", what,
                 str(count), str(seconds), "--timeout", str(timeout), *extra],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        # The probes in a process of their own (a lifecycle manager's), the storm in another.
        storm_args = ["--no-probe"] + ([] if polite else ["--impolite"])
        procs = [clients("probe", 0)] + ([clients(kind, threads, *storm_args)]
                                         if kind != "probe" else [])
        outs: list[list[str]] = [[] for _ in procs]
        ready = threading.Barrier(len(procs) + 1)
        readers = [threading.Thread(target=self._collect, args=(p, out, ready), daemon=True)
                   for p, out in zip(procs, outs, strict=True)]
        for r in readers:
            r.start()
        try:
            ready.wait(timeout=120.0)
        except threading.BrokenBarrierError:
            pass
        t0 = self.now()
        cpu: list[float] = [node_cpu_s(self.proc.pid)]
        sampler = threading.Timer(seconds, lambda: cpu.append(node_cpu_s(self.proc.pid)))
        sampler.start()
        for p, r in zip(procs, readers, strict=True):
            p.wait(timeout=seconds + timeout + 120)
            r.join(10.0)
        t1 = t0 + seconds
        time.sleep(0.3)  # frames of the window still on the wire
        reports = [json.loads(ln) for out in outs for ln in out if ln.startswith("{")]
        if len(reports) != len(procs):
            raise RuntimeError("storm clients failed:\n" + "\n".join(
                ln for out in outs for ln in out[-10:]))
        sampler.join()
        report = reports[-1]
        report["services"].update(reports[0]["services"])
        report["node_cpu_cores"] = (cpu[-1] - cpu[0]) / seconds
        report["clients_cpu_cores"] = sum(r.get("cpu_s", 0.0) for r in reports) / seconds
        with self._lock:
            frames = sum(1 for s in self.stamps if t0 <= s < t1)
        report["frames"] = frames
        report["frames_per_s"] = frames / seconds
        # Frames per CPU second of the node: what its own CPU went to, whatever other
        # processes on a shared machine took (frames/s alone moves with their load).
        report["frames_per_node_cpu_s"] = frames / max(cpu[-1] - cpu[0], 1e-9)
        return report

    @staticmethod
    def _collect(proc: subprocess.Popen, out: list[str], ready: threading.Barrier) -> None:
        """Keep a client process's lines; meet the others at the barrier once it is ready."""
        for line in proc.stdout:
            out.append(line.rstrip("\n"))
            if line.startswith("STORM READY"):
                try:
                    ready.wait(timeout=120.0)
                except threading.BrokenBarrierError:
                    pass
        if not any(ln.startswith("STORM READY") for ln in out):
            ready.abort()

    def close(self) -> None:
        self._stop.set()
        if getattr(self, "ctx", None) is not None:
            if self.spinner is not None:
                self.spinner.stop(timeout=1.0)
            self.ctx.try_shutdown()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def node_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_storms(params: Mapping[str, Any], register: str = "", quiet_s: float = QUIET_S,
                 storms: Mapping[str, tuple[int, float]] = STORMS,
                 size: tuple[int, int] = (240, 320),
                 impolite: Mapping[str, tuple[int, float]] = IMPOLITE) -> dict[str, Any]:
    """Quiet, each storm, each impolite storm, quiet again, on one node process; see the
    module docstring."""
    results: dict[str, Any] = {"params": dict(params), "camera_hz": 5.0,
                               "camera_size": [size[1], size[0]],
                               "client_timeout_s": CLIENT_TIMEOUT_S}
    with StormRig(params, size=size, register=register) as rig:
        rig.warm_up()
        phases = {"quiet": rig.phase("probe", 0, quiet_s)}
        for kind, (threads, seconds) in storms.items():
            print(f"  [{kind}: {threads} threads, {seconds:g} s]", flush=True)
            phases[kind] = rig.phase(kind, threads, seconds)
        for kind, (threads, seconds) in impolite.items():
            print(f"  [{kind}, impolite: {threads} threads, {seconds:g} s]", flush=True)
            phases[f"{kind}_impolite"] = rig.phase(kind, threads, seconds, polite=False)
        phases["quiet_after"] = rig.phase("probe", 0, quiet_s)
        configured = next((ln for ln in rig.lines if "configured:" in ln), "")
    quiet = phases["quiet"]["frames_per_s"]
    for report in phases.values():
        report["frames_vs_quiet"] = report["frames_per_s"] / quiet if quiet else float("nan")
    results["phases"] = phases
    results["node_configured"] = configured.split("]: ", 1)[-1]
    return results


def table(results: Mapping[str, Any]) -> str:
    """The phases as a markdown table."""
    rows = ["| phase | frames/s | vs quiet | get_state p50 / p99 / max (ms) | get_prompts max "
            "(ms) | requests: ok / refused / lost | slowest answer (s) | CPU cores: node / "
            "clients | frames per node CPU s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, ph in results["phases"].items():
        svc = ph["services"]
        gs, gp = svc["get_state"], svc["get_prompts"]
        storm = next((v for k, v in svc.items() if k not in ("get_state", "get_prompts")), None)
        counts = (f"{storm['ok']} / {storm['refused']} / {storm['lost']}" if storm else "-")
        slowest = f"{storm['max_s']:.2f}" if storm else "-"
        rows.append(f"| {name} | {ph['frames_per_s']:.2f} | {ph['frames_vs_quiet']:.2f} | "
                    f"{gs['p50_s'] * 1e3:.0f} / {gs['p99_s'] * 1e3:.0f} / "
                    f"{gs['max_s'] * 1e3:.0f} | {gp['max_s'] * 1e3:.0f} | {counts} | {slowest} | "
                    f"{ph.get('node_cpu_cores', float('nan')):.2f} / "
                    f"{ph.get('clients_cpu_cores', float('nan')):.2f} | "
                    f"{ph.get('frames_per_node_cpu_s', float('nan')):.2f} |")
    return "\n".join(rows)
