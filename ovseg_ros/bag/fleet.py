"""Many bags: one output per input under OUTDIR, in this process (`--shard I/N` for job arrays)
or on a Ray cluster (`--ray`): one actor per model replica, the model loaded once per actor,
each bag processed whole by one actor; a failed bag (an error, or its actor died) is retried
once from scratch, then reported; the others go on.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ovseg_ros.bag import BagError
from ovseg_ros.bag.process import BagReport
from ovseg_ros.bag.source import is_bag

RAY_MISSING = ("--ray needs the optional dependency ray: pip install ray (in a clone of "
               "ovseg_ros: pip install '.[ray]')")


def expand_inputs(paths: Sequence[str], list_file: str | None = None) -> list[Path]:
    """Bags named on the command line or in --list (one path a line, # comments), a folder
    that is not itself a bag standing for the bags in it (sorted by name)."""
    names = list(paths)
    if list_file:
        try:
            text = Path(list_file).read_text()
        except OSError as exc:
            raise BagError(f"--list {list_file}: {exc.strerror or exc}") from None
        names += [ln.strip() for ln in text.splitlines()
                  if ln.strip() and not ln.strip().startswith("#")]
    out: list[Path] = []
    for name in names:
        p = Path(name)
        if p.is_dir() and not is_bag(p):
            inner = sorted(c for c in p.iterdir() if is_bag(c))
            if not inner:
                raise BagError(f"{p} is neither a bag nor a folder of bags")
            out += inner
        else:
            out.append(p)
    return out


def shard(bags: list[Path], spec: str | None) -> list[Path]:
    """`I/N`: every N-th bag starting at I (0 <= I < N), e.g. SLURM_ARRAY_TASK_ID/N."""
    if not spec:
        return bags
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise BagError(f"--shard {spec!r}: expected I/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise BagError(f"--shard {spec}: need 0 <= I < N")
    return bags[i::n]


def output_for(bag: Path, outdir: Path) -> Path:
    """OUTDIR/<bag name> (an .mcap/.bag file's name without its suffix)."""
    return outdir / (bag.stem if bag.is_file() else bag.name)


def check_unique(bags: list[Path], outdir: Path) -> None:
    seen: dict[Path, Path] = {}
    for b in bags:
        out = output_for(b, outdir)
        if out in seen:
            raise BagError(f"{seen[out]} and {b} would both write {out}: rename one")
        seen[out] = b


def run_local(run_one: Callable[..., BagReport], bags: list[Path], outdir: Path,
              progress: Any, **kw: Any) -> list[BagReport]:
    """One bag after another in this process; a failed bag is reported, the rest go on."""
    reports = []
    for bag in bags:
        out = output_for(bag, outdir)
        try:
            reports.append(run_one(bag, out, progress=progress, total=progress.add_total, **kw))
        except BagError as exc:
            reports.append(BagReport(str(bag), str(out), status="failed", error=str(exc)))
    return reports


# ---- Ray --------------------------------------------------------------------------------------

def ray_current_cluster() -> str | None:
    """The address `ray start` noted for the cluster it started on this machine, or None: the
    file ray.init() itself reads ($RAY_TMPDIR, else $TMPDIR, else /tmp; then
    ray/ray_current_cluster). Read without importing ray, because whether the address is
    loopback decides a variable Ray reads at import (run_ray)."""
    base = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    try:
        found = (Path(base) / "ray" / "ray_current_cluster").read_text().strip()
    except OSError:
        return None
    return found or None


def choose_cluster(address: str) -> tuple[str, str]:
    """(the address to join, or "local" to start a cluster here; the line that says which)
    for `--ray ADDRESS`. "auto" (a bare --ray) decides as ray.init() without an address does:
    RAY_ADDRESS, else the cluster `ray start` started on this machine, else a new local one."""
    if address == "auto":
        if os.environ.get("RAY_ADDRESS"):
            address, why = os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
        elif (found := ray_current_cluster()) is not None:
            address, why = found, "started on this machine by `ray start`"
        else:
            return "local", ("starting a local Ray cluster for this command (no RAY_ADDRESS, "
                             "and no `ray start` cluster on this machine)")
        return address, f"joining the Ray cluster at {address} ({why})"
    if address == "local":
        return address, "starting a local Ray cluster for this command"
    return address, f"joining the Ray cluster at {address}"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BagError(RAY_MISSING) from None
    return ray


class BagWorker:
    """The actor: one FramePipeline for its life, bags processed one at a time."""

    def __init__(self, argv: list[str]) -> None:
        import torch

        from ovseg_ros.bag.options import job_from_argv

        self.job = job_from_argv(argv)  # --threads (the model setting) applies here
        self.threads = torch.get_num_threads()
        self.pid = os.getpid()
        self.frames = 0

    def info(self) -> dict[str, int]:
        return {"pid": self.pid, "threads": self.threads}

    def process(self, bag: str, output: str, overwrite: bool, counter: Any) -> dict:
        def progress(n: int) -> None:
            counter.add.remote(n)

        try:
            report = self.job.run(Path(bag), Path(output), overwrite=overwrite,
                                  fresh_partial=True, progress=progress)
        except BagError as exc:
            report = BagReport(bag, output, status="failed", error=str(exc))
        report.worker_pid = self.pid
        return report.as_dict()


def _wait_alive(ray: Any, actor: Any, timeout_s: float = 300.0) -> None:
    """Until a restarting actor answers again (its model reloaded), or timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get(actor.info.remote(), timeout=30)
            return
        except ray.exceptions.RayError:
            time.sleep(0.5)


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n

    def value(self) -> int:
        return self.n


def run_ray(address: str, argv: list[str], bags: list[Path], outdir: Path, *, workers: int,
            gpus_per_worker: float, cpus_per_worker: float, overwrite: bool,
            progress: Any, total_frames: int) -> tuple[list[BagReport], dict[str, float]]:
    """Process `bags` on the cluster at `address` ("auto", "ray://...", "host:port", or
    "local" for a cluster of this machine; choose_cluster). Returns the reports and timings
    (start-up s)."""
    address, said = choose_cluster(address)
    print(f"ovseg bag: {said}", file=sys.stderr, flush=True)
    # A cluster this command starts serves only it: it listens on loopback, not the network.
    loopback = address == "local" or address.rsplit(":", 1)[0] in ("127.0.0.1", "localhost")
    if loopback and "ray" not in sys.modules:
        # A cluster on this machine's loopback (tests, one workstation): Ray would otherwise
        # rewrite 127.0.0.1 to the machine's outward address and never connect. Read by Ray at
        # import: resolve "this node" to the loopback address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = _import_ray()
    t0 = time.perf_counter()
    if not ray.is_initialized():
        local = {"_node_ip_address": "127.0.0.1"} if loopback else {}
        if address == "local":
            ray.init(log_to_driver=False, include_dashboard=False, **local)
        else:
            ray.init(address=address, log_to_driver=False, **local)
    Worker = ray.remote(max_restarts=-1, max_task_retries=0)(BagWorker)
    Counter = ray.remote(num_cpus=0)(_Counter)
    counter = Counter.remote()
    n = max(1, min(workers, len(bags)))
    actors = [Worker.options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)
              .remote(argv) for _ in range(n)]
    infos = ray.get([a.info.remote() for a in actors])  # every model loaded: start-up ends
    startup = {"startup_s": 0.0, "threads_per_worker": infos[0]["threads"]}
    startup["startup_s"] = time.perf_counter() - t0
    progress.add_total(total_frames)
    todo = [(b, 1) for b in bags]
    running: dict[Any, tuple[Any, Path, int]] = {}
    idle = list(actors)
    reports: dict[Path, BagReport] = {}
    shown = 0
    while todo or running:
        while todo and idle:
            bag, attempt = todo.pop(0)
            actor = idle.pop(0)
            ref = actor.process.remote(str(bag), str(output_for(bag, outdir)), overwrite,
                                       counter)
            running[ref] = (actor, bag, attempt)
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        now = ray.get(counter.value.remote())
        progress(now - shown)
        shown = now
        for ref in ready:
            actor, bag, attempt = running.pop(ref)
            idle.append(actor)
            try:
                result = ray.get(ref)
                error = result["error"] if result["status"] == "failed" else ""
            except ray.exceptions.RayError as exc:  # the actor died (it restarts) or a bug
                result, error = None, f"worker lost: {type(exc).__name__}: " \
                                      f"{str(exc).splitlines()[0][:200]}"
                _wait_alive(ray, actor)  # a task sent while it restarts would fail at once
            if error and attempt == 1:
                todo.append((bag, 2))  # once more, from scratch
                continue
            report = BagReport(str(bag), str(output_for(bag, outdir)),
                               status="failed" if error else "done", error=error)
            if result is not None:
                report.frames, report.skipped = result["frames"], result["skipped"]
                report.seconds, report.broken = result["seconds"], result["broken"]
                report.worker_pid = result["worker_pid"]
            report.attempts = attempt
            reports[bag] = report
    for a in actors:
        ray.kill(a)
    return [reports[b] for b in bags], startup


def summary_table(reports: list[BagReport]) -> str:
    rows = [("bag", "frames", "time s", "frames/s", "status")]
    for r in reports:
        status = r.status if not r.error else f"{r.status}: {r.error}"
        if r.skipped:
            status += f" (skipped {sum(r.skipped.values())})"
        if r.broken:
            status += f" ({r.broken})"
        rows.append((r.input, str(r.total), f"{r.seconds:.1f}", f"{r.fps:.2f}", status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True))
                     + "  " + row[4] for row in rows)


def write_json(path: Path, reports: list[BagReport], extra: dict[str, Any]) -> None:
    data = {"bags": [r.as_dict() for r in reports], **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
