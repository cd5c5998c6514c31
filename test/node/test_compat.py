"""ovseg_ros.node.compat over the installed rclpy: each feature test agrees with what this rclpy
really does, and each helper behaves the same on every distro (CI runs this on Jazzy and Kilted).
"""

from __future__ import annotations

import threading

import pytest
import rclpy
from helpers.ros_helpers import RosHarness, wait_for
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions, get_current_signal_handlers_options
from std_msgs.msg import String

from ovseg_ros.node import compat


class Guarded(compat.InvalidTransitionGuard, LifecycleNode):
    def on_configure(self, state) -> TransitionCallbackReturn:
        self.pub = self.create_lifecycle_publisher(String, "~/chatter", 10)
        return TransitionCallbackReturn.SUCCESS


def test_invalid_transition_probe_matches_this_rclpy(rclpy_context):
    plain = LifecycleNode("plain_lifecycle", context=rclpy_context)
    try:
        try:
            refused = plain.trigger_activate() == TransitionCallbackReturn.ERROR
        except _rclpy.RCLError:
            refused = False
        assert refused == compat.LIFECYCLE_REFUSES_INVALID_TRANSITIONS
    finally:
        plain.destroy_node()


def test_guard_refuses_invalid_transitions_and_keeps_the_node_serving(ros_domain_id):
    with RosHarness(ros_domain_id) as ros:
        node = ros.add(Guarded("guarded", context=ros.context))
        assert node.trigger_activate() == TransitionCallbackReturn.ERROR  # unconfigured

        def change(**transition) -> bool:
            req = ChangeState.Request(transition=Transition(**transition))
            return ros.call(ChangeState, "/guarded/change_state", req).success

        # By id, as Nav2's lifecycle manager sends it: without the guard, Jazzy's service
        # callback raises and the executor stops spinning (no answer, then nothing at all).
        assert change(id=Transition.TRANSITION_ACTIVATE) is False
        assert change(label="activate") is False
        assert change(id=Transition.TRANSITION_CONFIGURE) is True
        state = ros.call(GetState, "/guarded/get_state", GetState.Request()).current_state
        assert state.id == State.PRIMARY_STATE_INACTIVE
        assert change(id=Transition.TRANSITION_ACTIVATE) is True
        got = ros.collect(String, "/guarded/chatter")
        assert wait_for(lambda: node.pub.get_subscription_count() >= 1)
        node.pub.publish(String(data="active"))
        assert wait_for(lambda: got.count >= 1)


def test_shutdown_executor_probe_and_result(rclpy_context):
    probe = MultiThreadedExecutor(num_threads=2, context=rclpy_context)
    try:
        probe.shutdown(timeout_sec=0.5, wait_for_threads=False)
        takes_it = True
    except TypeError:
        takes_it = False
        probe.shutdown(timeout_sec=0.5)
    assert compat.accepts(probe.shutdown, "wait_for_threads") == takes_it

    executor = MultiThreadedExecutor(num_threads=2, context=rclpy_context)
    node = rclpy.create_node("spun", context=rclpy_context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    assert compat.shutdown_executor(executor, timeout_sec=5.0, wait_for_threads=False) is True
    spinner.join(5.0)
    assert not spinner.is_alive()
    node.destroy_node()


@pytest.mark.parametrize("uninstall", [True, False])
def test_try_shutdown_uninstalls_signal_handlers_as_asked(ros_domain_id, uninstall):
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=ros_domain_id,
               signal_handler_options=SignalHandlerOptions.ALL)
    try:
        assert get_current_signal_handlers_options() == SignalHandlerOptions.ALL
        compat.try_shutdown(context=context, uninstall_handlers=uninstall)
        assert not context.ok()
        expected = SignalHandlerOptions.NO if uninstall else SignalHandlerOptions.ALL
        assert get_current_signal_handlers_options() == expected
    finally:
        rclpy.signals.uninstall_signal_handlers()
        context.try_shutdown()
