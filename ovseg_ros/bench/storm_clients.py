"""Service clients that storm a running `ovseg` node, in a process of their own (as a planner
or a lifecycle manager would be): what `storms.py` starts for the benchmark and the tests.

    python -m ovseg_ros.bench.storm_clients NODE KIND THREADS SECONDS [--timeout S] [--impolite]

KIND: query_new (each query a phrase never sent before), query_cached (phrases the node has
encoded), set_prompts (known names, about one call in ten with a never-seen name), or probe
(nothing but the probes). A run also polls ~/get_state and ~/get_prompts 10 times a second
each, unless --no-probe (storms.py runs the probes in a process of their own, so that the
stormers' own Python work does not delay the probes' answers). A refused request
(success=false) that says "call again in about X s" is retried after min(X, 1 s), as a
well-behaved client does; --impolite clients call again at once, whatever the answer. Prints
one JSON line: per service the requests sent, answered with success, refused (by reason), lost
(no answer within the timeout) and the answer latencies (p50, p99, max in seconds), and the
CPU time this process used during the storm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from typing import Any

import numpy as np

KINDS = ("query_new", "query_cached", "set_prompts", "probe")
KNOWN = ["cat", "dog", "car", "bus", "tree", "lamp", "door", "sofa", "cup", "bike", "wall",
         "floor", "road", "sky", "person", "plant", "window", "table", "chair", "truck"]
CACHED_PHRASES = ["cat", "a red mug"]  # the harness asks these once before the storm
PROBE_PERIOD_S = 0.1
_RETRY = re.compile(r"call again in about ([0-9.]+) s")


class Tally:
    """Thread-safe counts and latencies of one service."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.sent = self.ok = self.lost = 0
        self.refused: Counter[str] = Counter()

    def add(self, took: float | None, success: bool | None, message: str = "") -> None:
        with self.lock:
            self.sent += 1
            if took is None:
                self.lost += 1
                return
            self.latencies.append(took)
            if success:
                self.ok += 1
            else:  # the reason without its numbers: one count per kind of refusal
                self.refused[re.sub(r"[0-9.]+", "N", message)[:240]] += 1

    def report(self) -> dict[str, Any]:
        with self.lock:
            lat = np.asarray(self.latencies or [np.nan])
            return {"sent": self.sent, "ok": self.ok, "lost": self.lost,
                    "refused": sum(self.refused.values()), "reasons": dict(self.refused),
                    "p50_s": float(np.nanpercentile(lat, 50)),
                    "p99_s": float(np.nanpercentile(lat, 99)), "max_s": float(np.nanmax(lat))}


def call(client: Any, request: Any, timeout: float) -> tuple[float | None, Any]:
    """(seconds to the answer or None when none came within `timeout`, the response)."""
    done = threading.Event()
    t0 = time.monotonic()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        client.remove_pending_request(future)
        return None, None
    return time.monotonic() - t0, future.result()


def run(node_path: str, kind: str, threads: int, seconds: float, timeout: float,
        seed: int = 0, probe: bool = True, polite: bool = True) -> dict[str, Any]:
    import rclpy
    from lifecycle_msgs.srv import GetState
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from ovseg_ros.node.runner import spin_executor
    from ovseg_ros.srv import GetPrompts, Query, SetPrompts

    ctx = Context()
    rclpy.init(context=ctx)
    node = Node(f"ovseg_storm_{kind}_{os.getpid()}", context=ctx)
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    executor.add_node(node)
    threading.Thread(target=spin_executor, args=(executor,), daemon=True).start()
    stop = threading.Event()
    tallies: dict[str, Tally] = {}
    fresh = iter(range(10**9))
    fresh_lock = threading.Lock()
    tag = f"{os.getpid()}"

    def new_name() -> str:
        with fresh_lock:
            return f"thing {tag}-{next(fresh)}"

    def client(srv_type: Any, name: str, warm_up: Any) -> Any:
        """A client that has had one answer: wait_for_service says the server is there, not
        that the server has discovered this client's reply reader; a reply sent before that
        is lost. The warm-up call is not counted."""
        c = node.create_client(srv_type, f"{node_path}/{name}")
        if not c.wait_for_service(timeout_sec=30.0):
            raise RuntimeError(f"{node_path}/{name} is not available")
        for _ in range(10):
            if call(c, warm_up, 3.0)[0] is not None:
                return c
        raise RuntimeError(f"{node_path}/{name} never answered")

    def request_for(rng: random.Random) -> tuple[str, Any, Any]:
        if kind == "set_prompts":
            names = rng.sample(KNOWN, rng.randint(2, 5))
            if rng.random() < 0.1:
                names.append(new_name())
            return "set_prompts", SetPrompts, SetPrompts.Request(prompts=names)
        phrases = [new_name()] if kind == "query_new" else list(CACHED_PHRASES)
        return "query", Query, Query.Request(phrases=phrases)

    def stormer(index: int, cli: Any, tally: Tally) -> None:
        rng = random.Random(seed * 1000 + index)
        while not stop.is_set():
            _, _, request = request_for(rng)
            took, res = call(cli, request, timeout)
            tally.add(took, None if res is None else res.success,
                      "" if res is None else res.message)
            hint = _RETRY.search(res.message) if res is not None and not res.success else None
            if hint and polite:
                stop.wait(min(float(hint.group(1)), 1.0))

    def prober(cli: Any, srv_type: Any, tally: Tally) -> None:
        nxt = time.monotonic()
        while not stop.is_set():
            took, res = call(cli, srv_type.Request(), timeout)
            tally.add(took, res is not None)
            nxt += PROBE_PERIOD_S
            stop.wait(max(nxt - time.monotonic(), 0.0))

    workers = []  # every client exists before READY: the storm starts at full strength
    probes = (("get_state", GetState), ("get_prompts", GetPrompts)) if probe else ()
    for service, srv_type in probes:
        tallies[service] = Tally()
        workers.append(threading.Thread(target=prober, daemon=True, args=(
            client(srv_type, service, srv_type.Request()), srv_type, tallies[service])))
    if kind != "probe":
        service, srv_type, _ = request_for(random.Random(seed))
        tallies[service] = Tally()
        warm_up = (SetPrompts.Request(prompts=KNOWN[:3]) if service == "set_prompts"
                   else Query.Request(phrases=CACHED_PHRASES[:1]))
        workers += [threading.Thread(target=stormer, daemon=True, args=(
            i, client(srv_type, service, warm_up), tallies[service])) for i in range(threads)]
    print("STORM READY", flush=True)
    t0, cpu0 = time.monotonic(), time.process_time()
    for w in workers:
        w.start()
    stop.wait(seconds)
    stop.set()
    for w in workers:
        w.join(timeout + 2.0)
    out = {"kind": kind, "threads": threads if kind != "probe" else 0, "seconds": seconds,
           "wall_s": time.monotonic() - t0, "timeout_s": timeout, "polite": polite,
           "cpu_s": time.process_time() - cpu0,
           "services": {name: t.report() for name, t in tallies.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ovseg_ros.bench.storm_clients",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("node", help="the node's path, e.g. /storm/ovseg")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("threads", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--timeout", type=float, default=10.0, help="each request's timeout (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-probe", action="store_true",
                   help="storm only (the probes run in a process of their own)")
    p.add_argument("--impolite", action="store_true",
                   help="call again at once after a refusal (no back-off)")
    args = p.parse_args(argv)
    out = run(args.node, args.kind, args.threads, args.seconds, args.timeout, args.seed,
              not args.no_probe, not args.impolite)
    print(json.dumps(out), flush=True)
    sys.stdout.flush()
    os._exit(0)  # skip the native teardown: the numbers are out


if __name__ == "__main__":
    sys.exit(main())
