"""Shared pytest fixtures for tests over real rclpy.

Every test gets its own rclpy Context (never the global one) on this run's ROS_DOMAIN_ID with
discovery kept on this machine, and a local single-threaded executor:

    def test_x(make_node, spin_until):
        node = make_node("talker")          # created in the test's context, added to executor
        ...
        assert spin_until(lambda: got)

rclpy is imported inside the fixtures, so ROS-free tests never need it, while a test that uses
them errors (never skips) when rclpy is missing.
"""

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
from helpers.ros_marker import reaches_ros

# The in-process segmentation node fixtures (ros, tiny, seg_node, ...): see node_fixtures.py.
pytest_plugins = ["helpers.node_fixtures", "helpers.processes", "helpers.cli_inputs",
                  "helpers.https_server"]

# Read by the rmw when a context starts, and inherited by any node a test runs as a subprocess.
# scripts/test.sh picks a ROS_DOMAIN_ID per run; a bare `pytest` derives one from its pid so that
# parallel runs on one machine (almost always) stay apart. 1..101 is the range that is safe on
# Linux (higher ids can hit the ephemeral port range).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)
if not os.environ.get("ROS_DOMAIN_ID"):
    os.environ["ROS_DOMAIN_ID"] = str(10 + os.getpid() % 90)
# pytest-xdist (`-n N`): each worker process on a domain of its own, next to the run's, so that
# the workers' nodes, named alike, never hear each other.
if os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    worker = int(os.environ["PYTEST_XDIST_WORKER"][2:])
    os.environ["ROS_DOMAIN_ID"] = str(1 + (int(os.environ["ROS_DOMAIN_ID"]) - 1 + worker) % 101)
# Downloads and ONNX exports of the test models go to a folder of this run, never into the
# user's ~/.cache/ovseg_ros (inherited by the node processes the tests start).
os.environ["OVSEG_CACHE"] = tempfile.mkdtemp(prefix="ovseg-test-cache-")
# Tests press Ctrl-C on their child processes as a terminal would. A suite started as a
# background job of a script (`bash .ci/run &`) starts with SIGINT ignored, every child would
# inherit that, and the product rightly keeps a SIGINT it was started ignoring.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# The user journeys (test/journeys) need the install in a given state (the README's set-up
# alone) and make a venv of their own: .ci/run runs them in a stage of their own.
collect_ignore = [] if os.environ.get("OVSEG_JOURNEYS") == "1" else ["journeys"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ros: needs rclpy or ROS interfaces; set automatically (test/helpers/ros_marker.py)")
    config.addinivalue_line(
        "markers", "once: independent of the ROS distro; .ci/run runs it on the first only")
    config.addinivalue_line(
        "markers", "slow: long (storms, soaks, workspace builds, Ray clusters, fresh venvs, "
        "model exports); the inner loop deselects them: -m 'not slow'")
    config.addinivalue_line(
        "markers", "quiet: a bound that assumes a machine running nothing else (storms, load, "
        "signal-to-exit times); implies slow; .ci/run runs them one at a time, alone")


def pytest_collection_modifyitems(config, items):
    """Mark every test of a module that reaches rclpy (`pytest -m ros` selects them), and
    every `quiet` test slow."""
    for item in items:
        if reaches_ros(Path(str(item.fspath)).resolve()):
            item.add_marker(pytest.mark.ros)
        if item.get_closest_marker("quiet") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ros_domain_id() -> int:
    return int(os.environ["ROS_DOMAIN_ID"])


@pytest.fixture
def rclpy_context(ros_domain_id):
    """A fresh, initialised rclpy Context; shut down after the test."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    yield context
    context.try_shutdown()


@pytest.fixture
def ros_executor(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=rclpy_context)
    yield executor
    executor.shutdown(timeout_sec=1.0)


@pytest.fixture
def make_node(rclpy_context, ros_executor):
    """Factory: make_node(name, **kwargs) -> rclpy Node in the test's context and executor."""
    from rclpy.node import Node

    nodes = []

    def _make(name: str, **kwargs):
        node = Node(name, context=rclpy_context, **kwargs)
        ros_executor.add_node(node)
        nodes.append(node)
        return node

    yield _make
    for node in nodes:
        ros_executor.remove_node(node)
        node.destroy_node()


@pytest.fixture
def spin_until(ros_executor):
    """spin_until(predicate, timeout=60.0) -> bool: spin the test's executor until it is true
    (a bound, not a speed requirement: this machine can stall a process for seconds)."""

    def _spin(predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            ros_executor.spin_once(timeout_sec=0.05)
        return True

    return _spin
