"""`ovseg bag --ray` on a real local Ray cluster: a head and a second node started by this
module (ray.cluster_utils.Cluster: processes this test starts and ends itself, never `ray
stop`), 1 CPU and capped memory each, every address 127.0.0.1, authentication off for the test.
The CLI runs as a child process that joins the cluster as its driver, as a user's would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.bag_helpers import first_difference, model_args, read_rosbags, run_bag

from ovseg_ros.bag.sample import write_sample_bag

# The cluster and the bags do not depend on the ROS distro: .ci/run runs this module on the
# first distro only (about 5 minutes on 2 cores).
pytestmark = [pytest.mark.once, pytest.mark.slow]  # a local Ray cluster

MB = 2**20


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # test only: no token for the child driver
    node = dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=80 * MB,
                memory=2048 * MB)
    c = Cluster(initialize_head=True, head_node_args=dict(node, include_dashboard=False))
    try:
        c.add_node(**node)
        assert c.address.startswith("127.0.0.1:")
        yield c
    finally:
        c.shutdown()  # ends the processes this Cluster started (by their handles)
        if old is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old


@pytest.fixture(scope="module")
def margs(tmp_path_factory) -> list[str]:
    # Ray sets an actor's threads to its CPUs (1): pin torch's, here and in the references,
    # since float sums depend on the thread count.
    return model_args(tmp_path_factory.mktemp("ray_model")) + ["--threads", "2"]


def fleet(cluster, margs, bags, out, *extra, wait=None):
    """Run `ovseg bag --ray` in a child process; `wait(child)` runs while it works."""
    argv = [sys.executable, "-m", "ovseg_ros.cli.main", "bag", *map(str, bags), "-o", str(out),
            "--ray", cluster.address, *extra, *margs]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        if wait is not None:
            wait(child)
        out_text, err_text = child.communicate(timeout=240)
    finally:
        child.kill()
        child.wait()
    return child.returncode, out_text, err_text


def test_three_bags_on_two_actors_equal_single_process(tmp_path, cluster, margs):
    bags = [write_sample_bag(tmp_path / f"b{i}", frames=3 + i, size=48) for i in range(3)]
    for b in bags:
        assert run_bag(b, "-o", tmp_path / "ref" / b.name, *margs) == 0
    rc, out, err = fleet(cluster, margs, bags, tmp_path / "out", "--workers", "2")
    assert rc == 0, err[-2000:]
    for b in bags:
        diff = first_difference(read_rosbags(tmp_path / "out" / b.name),
                                read_rosbags(tmp_path / "ref" / b.name))
        assert diff is None, diff
    summary = json.loads((tmp_path / "out" / "ovseg_summary.json").read_text())
    assert [r["status"] for r in summary["bags"]] == ["done"] * 3
    assert [sum(r["frames"].values()) for r in summary["bags"]] == [3, 4, 5]
    assert len({r["worker_pid"] for r in summary["bags"]}) == 2  # both actors worked
    assert "100%" in err and "3/3 bags done" in out


def test_a_corrupt_bag_fails_alone(tmp_path, cluster, margs):
    good = [write_sample_bag(tmp_path / f"g{i}", frames=2, size=48) for i in range(2)]
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + os.urandom(4000))
    rc, out, err = fleet(cluster, margs, [good[0], bad, good[1]], tmp_path / "out",
                         "--workers", "2")
    assert rc == 1
    summary = {Path(r["input"]).name: r for r in
               json.loads((tmp_path / "out" / "ovseg_summary.json").read_text())["bags"]}
    assert summary["g0"]["status"] == summary["g1"]["status"] == "done"
    assert summary["bad.mcap"]["status"] == "failed" and "cannot read" in summary["bad.mcap"][
        "error"] and summary["bad.mcap"]["attempts"] == 2
    assert (tmp_path / "out" / "g0").is_dir() and not (tmp_path / "out" / "bad").exists()
    assert "2/3 bags done" in out


def _worker_pids() -> list[int]:
    """PIDs of BagWorker actors (Ray titles their processes "ray::BagWorker...") that descend
    from this test process (the cluster's raylets are our children), found through /proc."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ray::BagWorker" not in cmd:
            continue
        pid = int(entry.name)
        while pid > 1:
            try:
                stat = (Path("/proc") / str(pid) / "stat").read_text()
            except OSError:
                break
            pid = int(stat.rsplit(")", 1)[1].split()[1])
            if pid == me:
                found.append(int(entry.name))
                break
    return found


def test_an_actor_killed_mid_bag_is_retried(tmp_path, cluster, margs):
    big = write_sample_bag(tmp_path / "big", frames=12, size=320, depth=False)
    # Frames upsampled to a short side of 768 (the tiny model then takes about half a second a
    # frame), so that the bag is still in the actor when the kill lands at the first progress
    # line (at most one every 0.5 s: the first said 30%, 8 frames left); at its own size a
    # quiet machine finished 48 frames in 0.6 s, before any line reached the test.
    slow = [*margs, "--input-size", "768"]
    assert run_bag(big, "-o", tmp_path / "ref", *slow) == 0
    killed: list[int] = []

    def kill_mid_bag(child):
        for line in child.stderr:  # the driver's progress: "ovseg bag: 30% (4/12 frames, ..."
            if re.search(r"ovseg bag: \d+% \(\d+/\d+ frames", line):
                break
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            for pid in _worker_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    rc, out, err = fleet(cluster, slow, [big], tmp_path / "out", "--workers", "1",
                         wait=kill_mid_bag)
    assert killed, "no BagWorker process found to kill"
    assert rc == 0, out + err[-2000:]
    [report] = json.loads((tmp_path / "out" / "ovseg_summary.json").read_text())["bags"]
    assert report["status"] == "done" and report["attempts"] == 2
    assert report["worker_pid"] not in killed
    diff = first_difference(read_rosbags(tmp_path / "out" / "big"), read_rosbags(tmp_path / "ref"))
    assert diff is None, diff
