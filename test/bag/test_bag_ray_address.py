"""A bare `ovseg bag --ray` finds its cluster as ray.init() does: RAY_ADDRESS, else the cluster
`ray start` started on this machine, else a new local one, and says which in one line.

The cluster is a real one started with the `ray start` command a user runs, on 127.0.0.1, with
1 CPU and capped memory, in a Ray temp folder of this module's own (RAY_TMPDIR: Ray notes the
cluster's address there, and nothing of another Ray on this machine is seen); it is ended by the
PIDs of its processes (found by that folder in their command lines), never `ray stop`.
Authentication is off for the test. The CLI runs as a child process, as a user's would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers.bag_helpers import first_difference, model_args, read_rosbags, run_bag

from ovseg_ros.bag import fleet
from ovseg_ros.bag.sample import write_sample_bag

# Distro-independent and long (a cluster, child drivers): once per CI run.
pytestmark = [pytest.mark.once, pytest.mark.slow]
MB = 2**20


def _pids_under(folder: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if folder.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _end(folder: str) -> None:
    """SIGTERM, then SIGKILL after 10 s, to every process started in `folder`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_under(folder):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _pids_under(folder) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert not _pids_under(folder), "a Ray process of the test survived SIGKILL"


def _ray_env(tmpdir: str, **extra: str) -> dict[str, str]:
    """No RAY_ADDRESS, no token, our own Ray folder; `extra` on top."""
    drop = ("RAY_ADDRESS", "TMPDIR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return dict(env, RAY_TMPDIR=tmpdir, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1", **extra)


@pytest.fixture(scope="module")
def started():
    """(address, RAY_TMPDIR) of a cluster started by `ray start --head`; ended after."""
    tmpdir = tempfile.mkdtemp(prefix="ovr-", dir="/tmp")  # short: Ray's socket paths
    ray = Path(sys.executable).parent / "ray"
    try:
        out = subprocess.run(
            [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", "--port=0",
             "--num-cpus=1", f"--memory={2048 * MB}", f"--object-store-memory={80 * MB}",
             "--include-dashboard=false", "--disable-usage-stats"],
            # Loopback only: `ray start` would otherwise bind the machine's outward address
            # even with --node-ip-address=127.0.0.1. The drivers below get no such help.
            env=_ray_env(tmpdir, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0"), capture_output=True,
            text=True, timeout=180)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        address = (Path(tmpdir) / "ray" / "ray_current_cluster").read_text().strip()
        assert address.startswith("127.0.0.1:"), address
        yield address, tmpdir
    finally:
        _end(tmpdir)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A small bag, the tiny model's options and the single-process reference output."""
    d = tmp_path_factory.mktemp("ray_address")
    margs = model_args(d / "model") + ["--threads", "1"]
    bags = [write_sample_bag(d / "b0", frames=2, size=32)]
    for b in bags:
        assert run_bag(b, "-o", d / "ref" / b.name, *margs) == 0
    return d, margs, bags


def bare_ray(work, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    d, margs, bags = work
    argv = [sys.executable, "-m", "ovseg_ros.cli.main", "bag", *map(str, bags), "-o", str(out),
            "--ray", *margs]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)


def same_as_reference(work, out: Path) -> None:
    d, _, bags = work
    for b in bags:
        diff = first_difference(read_rosbags(out / b.name), read_rosbags(d / "ref" / b.name))
        assert diff is None, diff


def test_our_lookup_reads_the_file_ray_itself_reads(started, monkeypatch):
    address, tmpdir = started
    monkeypatch.setenv("RAY_TMPDIR", tmpdir)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    from ray._common.utils import get_ray_address_file

    assert Path(get_ray_address_file(None)).read_text().strip() == address
    assert fleet.ray_current_cluster() == address
    assert fleet.choose_cluster("auto") == (
        address, f"joining the Ray cluster at {address} (started on this machine by `ray "
                 "start`)")
    monkeypatch.setenv("RAY_ADDRESS", "10.9.8.7:6379")  # RAY_ADDRESS wins, as in ray.init()
    assert fleet.choose_cluster("auto") == (
        "10.9.8.7:6379", "joining the Ray cluster at 10.9.8.7:6379 (RAY_ADDRESS)")
    monkeypatch.setenv("RAY_TMPDIR", str(Path(tmpdir) / "empty"))
    monkeypatch.delenv("RAY_ADDRESS")
    assert fleet.choose_cluster("auto")[0] == "local"
    assert fleet.choose_cluster("127.0.0.1:1") == ("127.0.0.1:1",
                                                   "joining the Ray cluster at 127.0.0.1:1")


def test_bare_ray_joins_the_cluster_ray_start_started(started, work, tmp_path):
    address, tmpdir = started
    out = bare_ray(work, tmp_path / "out", _ray_env(tmpdir))
    assert out.returncode == 0, out.stderr[-3000:]
    said = [ln for ln in out.stderr.splitlines() if ln.startswith("ovseg bag: ")]
    assert said[0] == (f"ovseg bag: joining the Ray cluster at {address} (started on this "
                       "machine by `ray start`)")
    same_as_reference(work, tmp_path / "out")
    assert "1/1 bags done" in out.stdout


def test_bare_ray_with_no_cluster_starts_a_local_one(work, tmp_path):
    tmpdir = tempfile.mkdtemp(prefix="ovl-", dir="/tmp")
    try:
        out = bare_ray(work, tmp_path / "out", _ray_env(tmpdir))
        assert out.returncode == 0, out.stderr[-3000:]
        said = [ln for ln in out.stderr.splitlines() if ln.startswith("ovseg bag: ")]
        assert said[0].startswith("ovseg bag: starting a local Ray cluster for this command")
        same_as_reference(work, tmp_path / "out")
    finally:
        _end(tmpdir)  # the local cluster ends with its driver; anything left is ended here
