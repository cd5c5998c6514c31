"""The node as a process: start-up failures end in one error line, signals end it quickly.

The tiny_process test model is registered with open_clip by a small `python -c` wrapper before the
node's real main() runs; the module entry point itself is run with `python -m`.
"""

from __future__ import annotations

import signal
import sys
import time

import pytest
from helpers.processes import (
    SLOW_INFERENCE,
    NodeProcess,
    assert_one_line_failure,
    tiny_node,
)
from helpers.ros_helpers import RosHarness, image_fields_msg, make_picture, wait_for

pytestmark = pytest.mark.quiet  # time bounds under load or after signals: run alone

pytest.importorskip("rclpy")







# Test code run before main(): every frame stays 30 s inside "the model" (which cannot be
# interrupted), announced on stdout.






def test_start_up_failures_end_in_one_error_line(tiny_process, tmp_path):
    import torch

    d, base = tiny_process
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file" * 10)
    cases = {  # all started at once: they spend most of their time importing torch
        "missing": ({**base, "heads": str(tmp_path / "nope.pt")}, "head checkpoint not found"),
        "corrupt": ({**base, "heads": str(corrupt)}, "corrupt"),
        # invalid parameter values at start-up: test_node_segment (in-process, cheaper)
    }
    procs = {k: tiny_node(d, {**params, "__ns": f"/proc_{k}"}) for k, (params, _) in
             cases.items()}
    if not torch.cuda.is_available():  # the module entry point itself, asking for CUDA
        procs["cuda"] = NodeProcess([sys.executable, "-m", "ovseg_ros.node.segment_node",
                                     "--ros-args", "-p", "device:=cuda", "-r",
                                     "__ns:=/proc_cuda"])
        cases["cuda"] = ({}, "CUDA is not available")
    for key, p in procs.items():
        assert_one_line_failure(p, p.wait(180), cases[key][1])


def test_signals_end_the_node_within_two_seconds(tiny_process, ros_domain_id):
    d, base = tiny_process
    # One node idle, one stuck inside a 30 s "inference" (the model cannot be interrupted),
    # one still loading its model.
    loading = ("import ovseg_ros.node.outputs as _out\n"
               "_segmenter = _out.Segmenter\n"
               "def _slow_load(config, ids_from=None):\n"
               "    print('LOADING MODEL', flush=True)\n"
               "    time.sleep(30)\n"
               "    return _segmenter(config, ids_from)\n"
               "_out.Segmenter = _slow_load\n")
    idle = tiny_node(d, {**base, "__ns": "/proc_idle"})
    busy = tiny_node(d, {**base, "__ns": "/proc_busy"}, patch=SLOW_INFERENCE)
    load = tiny_node(d, {**base, "__ns": "/proc_load"}, patch=loading)
    try:
        assert wait_for(lambda: idle.has("ready") and busy.has("ready"), timeout=180), \
            idle.output + busy.output
        with RosHarness(ros_domain_id) as ros:
            from sensor_msgs.msg import Image

            from ovseg_ros.node import qos as Q

            pub = ros.helper.create_publisher(Image, "/proc_busy/image", Q.reliable(5))
            msg = image_fields_msg(make_picture(32, 48))
            deadline = time.monotonic() + 30
            while not busy.has("INFERENCE STARTED") and time.monotonic() < deadline:
                pub.publish(msg)
                time.sleep(0.1)
            assert busy.has("INFERENCE STARTED"), busy.output

        assert wait_for(lambda: load.has("LOADING MODEL"), timeout=120), load.output
        timings = {}
        for name, p, sig in (("idle", idle, signal.SIGINT), ("busy", busy, signal.SIGTERM),
                             ("loading", load, signal.SIGTERM)):
            t0 = time.monotonic()
            p.proc.send_signal(sig)
            rc = p.wait(30)
            timings[name] = time.monotonic() - t0
            assert rc == 0, p.output
        print(f"exit after signal: {timings}")
        assert max(timings.values()) < 10.0, timings  # target about 2 s; printed above
        assert busy.has("still in inference"), busy.output
        assert not busy.has("Failed to publish log message"), busy.output  # rosout is gone
        assert not load.has("start-up failed"), load.output  # a stop, not a failure
        assert "Traceback" not in idle.output + busy.output + load.output
    finally:
        for p in (idle, busy, load):
            if p.proc.poll() is None:
                p.proc.kill()


def test_repeated_signals_are_ignored_while_shutting_down(tiny_process):
    """A double Ctrl-C, or `ros2 launch` forwarding the terminal's SIGINT and then sending its
    own: the first signal starts the shutdown, the others must not interrupt it (they used to
    crash the processes with tracebacks and `terminate called without an active exception`)."""
    d, base = tiny_process
    # The replay node feeds the busy node, so one frame sits inside the model at the signal.
    replay = NodeProcess([sys.executable, "-m", "ovseg_ros.node.replay_node", "--ros-args",
                          "-r", "__ns:=/proc_sig", "-p", "rate:=5.0"])
    busy = tiny_node(d, {**base, "__ns": "/proc_sig", "qos": "sensor_data"}, patch=SLOW_INFERENCE)
    managed = tiny_node(d, {**base, "__ns": "/proc_sig_managed", "autostart": "false"})
    procs = {"replay": replay, "busy": busy, "managed": managed}
    try:
        assert wait_for(lambda: busy.has("INFERENCE STARTED") and replay.has("publishing")
                        and managed.has("waiting for a lifecycle manager"), timeout=180), \
            "\n".join(p.output for p in procs.values())
        timings = {}
        for name, p in procs.items():
            t0 = time.monotonic()
            for _ in range(3):
                p.proc.send_signal(signal.SIGINT)
                time.sleep(0.02)
            rc = p.wait(30)
            timings[name] = time.monotonic() - t0
            assert rc == 0, p.output
            for bad in ("Traceback", "terminate called", "KeyboardInterrupt"):
                assert bad not in p.output, p.output
        print(f"exit after three SIGINTs: {timings}")
        assert max(timings.values()) < 10.0, timings  # target about 2 s; printed above
        assert not managed.has("ready"), managed.output  # autostart false: never activated
    finally:
        for p in procs.values():
            if p.proc.poll() is None:
                p.proc.kill()


def test_lifecycle_shutdown_ends_the_process(tiny_process, ros_domain_id):
    """A managed node driven to 'finalized' (ros2 lifecycle set /ovseg shutdown) exits 0, so a
    launch file or a supervisor sees it end."""
    from helpers.node_fixtures import change_state

    d, base = tiny_process
    p = tiny_node(d, {**base, "__ns": "/proc_final", "autostart": "false"})
    try:
        assert wait_for(lambda: p.has("waiting for a lifecycle manager"), timeout=180), p.output
        with RosHarness(ros_domain_id) as ros:
            assert change_state(ros, "/proc_final/ovseg", "configure"), p.output
            assert change_state(ros, "/proc_final/ovseg", "shutdown"), p.output
        assert p.wait(30) == 0, p.output
        assert "Traceback" not in p.output, p.output
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
