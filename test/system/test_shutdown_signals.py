"""Start-up and shutdown edges of the node's process: a Ctrl-C at any moment ends quietly with
exit code 0, and a SIGTERM during a configure that ~/change_state started is reported as a
shutdown, not as a failed configure."""

from __future__ import annotations

import signal
import sys
import time

import pytest
from helpers.processes import ROOT, NodeProcess, tiny_node
from helpers.ros_helpers import RosHarness, wait_for

pytestmark = pytest.mark.quiet  # time bounds under load or after signals: run alone

pytest.importorskip("rclpy")

QUIET_BAD = ("Traceback", "KeyboardInterrupt", "RCLError", "terminate called")


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "ovseg_ros.node.segment_node"],
    [sys.executable, str(ROOT / "scripts" / "ros" / "segment_node")],  # `ros2 run`'s file
], ids=["python-m", "ros2-run"])
def test_sigint_during_the_imports_ends_quietly(argv):
    """0.5 s after start the process is importing torch, open_clip and rclpy."""
    p = NodeProcess(argv + ["--ros-args", "-p", "device:=cpu"])
    time.sleep(0.5)
    assert p.proc.poll() is None, p.output  # still starting
    p.proc.send_signal(signal.SIGINT)
    rc = p.wait(30)
    assert rc == 0 and not any(bad in p.output for bad in QUIET_BAD), (rc, p.output)
    assert len(p.lines) <= 1, p.output


# The weights "load" until the context is shut down (by the SIGTERM), then really load: the
# configure ends while the process shuts down, on a context that is no longer valid (the
# shutdown waits for it, so that its log line is seen whatever the machine's load).
LOAD_UNTIL_SHUTDOWN = ("import rclpy, ovseg_ros.node.outputs as _out\n"
                       "_segmenter = _out.Segmenter\n"
                       "def _slow_load(config, ids_from=None):\n"
                       "    print('LOADING MODEL', flush=True)\n"
                       "    while rclpy.ok():\n"
                       "        time.sleep(0.01)\n"
                       "    return _segmenter(config, ids_from)\n"
                       "_out.Segmenter = _slow_load\n"
                       "import ovseg_ros.node.runner as _runner\n"
                       "_stop = _runner.spin_node\n"
                       "def _spin_node(node, executor=None, before_destroy=None):\n"
                       "    def _later():\n"  # the configure ends on the dead context
                       "        t = time.monotonic() + 20\n"
                       "        while node.state == 'configuring' and time.monotonic() < t:\n"
                       "            time.sleep(0.01)\n"
                       "        if before_destroy: before_destroy()\n"
                       "    return _stop(node, executor, _later)\n"
                       "_runner.spin_node = _spin_node\n")


def test_sigterm_during_a_managed_configure_says_shutting_down(tiny_process, ros_domain_id):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    d, base = tiny_process
    p = tiny_node(d, {**base, "__ns": "/proc_cfg", "autostart": "false"},
                  patch=LOAD_UNTIL_SHUTDOWN)
    try:
        assert wait_for(lambda: p.has("waiting for a lifecycle manager"), 180), p.output
        with RosHarness(ros_domain_id) as ros:
            client = ros.helper.create_client(ChangeState, "/proc_cfg/ovseg/change_state")
            assert client.wait_for_service(timeout_sec=30)
            client.call_async(ChangeState.Request(transition=Transition(label="configure")))
            assert wait_for(lambda: p.has("LOADING MODEL"), 60), p.output
            p.proc.send_signal(signal.SIGTERM)
            rc = p.wait(30)
        assert rc == 0, p.output
        assert p.has("configure stopped: the node is shutting down"), p.output
        assert not p.has("configure failed"), p.output
        assert not any(bad in p.output for bad in QUIET_BAD), p.output
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
