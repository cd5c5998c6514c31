"""ovseg_ros.node.runner.spin_executor over real rclpy: rclpy's destroyed-entity race
(InvalidHandle out of spin, rclpy issues #1142 and #1284) does not end a node's spin, and
every other exception still does."""

from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip("rclpy")
from helpers.ros_helpers import wait_for  # noqa: E402
from rclpy.exceptions import InvalidHandle  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from ovseg_ros.node.runner import RACE_BURST, spin_executor  # noqa: E402


class RaisingExecutor(SingleThreadedExecutor):
    """A real executor whose first `n` spin_once calls raise `exc`, as rclpy's wait-set
    construction does when an entity's destruction is requested half-way."""

    def __init__(self, exc: Exception, n: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.exc, self.left = exc, n

    def spin_once(self, timeout_sec: float | None = None) -> None:
        if self.left > 0:
            self.left -= 1
            raise self.exc
        super().spin_once(timeout_sec)


def _spin_in_thread(executor) -> tuple[threading.Thread, list]:
    out: list = []

    def run() -> None:
        try:
            out.append(spin_executor(executor))
        except Exception as exc:  # what would end the node's process
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_invalid_handle_from_spin_is_ridden_over_and_messages_keep_flowing(rclpy_context):
    executor = RaisingExecutor(
        InvalidHandle("cannot use Destroyable because destruction was requested"), 2,
        context=rclpy_context)
    node = rclpy.create_node("spin_probe", context=rclpy_context)
    got: list = []
    node.create_subscription(String, "chatter", got.append, 10)
    pub = node.create_publisher(String, "chatter", 10)
    executor.add_node(node)
    thread, out = _spin_in_thread(executor)
    try:
        assert wait_for(lambda: (pub.publish(String(data="hi")), bool(got))[1], timeout=10.0)
        assert thread.is_alive() and got[0].data == "hi"
    finally:
        rclpy_context.try_shutdown()
        thread.join(timeout=5.0)
        node.destroy_node()
    assert out == [2]  # both raises were ridden over, then the shutdown ended the spin


def test_any_other_exception_still_ends_the_spin(rclpy_context):
    executor = RaisingExecutor(RuntimeError("a callback's own bug"), 1, context=rclpy_context)
    thread, out = _spin_in_thread(executor)
    thread.join(timeout=5.0)
    assert not thread.is_alive()
    assert len(out) == 1 and isinstance(out[0], RuntimeError) and "own bug" in str(out[0])


def test_an_invalid_handle_that_never_goes_away_ends_the_spin(rclpy_context):
    """A destroyed entity still in the wait set raises on every spin: no race, a fault."""
    executor = RaisingExecutor(InvalidHandle("destruction was requested"), 10 * RACE_BURST,
                               context=rclpy_context)
    thread, out = _spin_in_thread(executor)
    thread.join(timeout=5.0)
    assert not thread.is_alive()
    assert len(out) == 1 and isinstance(out[0], InvalidHandle)
    assert executor.left == 10 * RACE_BURST - RACE_BURST  # raised at the burst, not before
