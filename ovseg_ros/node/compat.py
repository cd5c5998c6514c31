"""The rclpy differences between the distros the node runs on (Jazzy: rclpy 7.x, Kilted: 9.x).

Each difference is decided by a feature test of the installed rclpy (a parameter that a
function accepts, an attribute that exists), never by a version number, so a backport or a
new distro takes the right path by itself. doc/architecture.md ("ROS 2 distros") lists every
difference found, including those the node does not need to handle.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import Executor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNodeMixin, TransitionCallbackReturn
from rclpy.signals import uninstall_signal_handlers
from rclpy.utilities import get_default_context


def accepts(func: Callable[..., Any], name: str) -> bool:
    """Whether `func` takes a parameter called `name` (the feature test used here)."""
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def shutdown_executor(executor: Executor, timeout_sec: float,
                      wait_for_threads: bool = True) -> bool:
    """`executor.shutdown(timeout_sec)`, also stopping a MultiThreadedExecutor's thread pool
    without waiting for its threads when `wait_for_threads` is False.

    Kilted's MultiThreadedExecutor.shutdown takes `wait_for_threads` and shuts its pool down;
    Jazzy's has no such parameter and leaves the pool's threads to end with their callbacks.
    Returns what shutdown returns (True when the executor stopped within the timeout).
    """
    if accepts(executor.shutdown, "wait_for_threads"):
        return executor.shutdown(timeout_sec=timeout_sec, wait_for_threads=wait_for_threads)
    return executor.shutdown(timeout_sec=timeout_sec)


def try_shutdown(context: Context | None = None, uninstall_handlers: bool | None = None) -> None:
    """`rclpy.try_shutdown` with Kilted's meaning on every distro.

    Kilted's also uninstalls rclpy's signal handlers (by default when `context` is the default
    one); Jazzy's shuts the context down and leaves the handlers installed.
    """
    if accepts(rclpy.try_shutdown, "uninstall_handlers"):
        rclpy.try_shutdown(context=context, uninstall_handlers=uninstall_handlers)
        return
    rclpy.try_shutdown(context=context)
    default = context is None or context is get_default_context()
    if uninstall_handlers or (uninstall_handlers is None and default):
        uninstall_signal_handlers()


def _refuses_invalid_transitions() -> bool:
    """Whether rclpy's own lifecycle code turns a transition that the current state does not
    allow into ERROR (Kilted) rather than letting rcl's RCLError out (Jazzy).

    Probed on the source of the private `__change_state` that both `trigger_*()` and the
    `~/change_state` service run, because there is no public marker for it.
    """
    change = getattr(LifecycleNodeMixin, "_LifecycleNodeMixin__change_state", None)
    try:
        return change is not None and "except _rclpy.RCLError" in inspect.getsource(change)
    except (OSError, TypeError):  # no source installed: guard anyway
        return False


LIFECYCLE_REFUSES_INVALID_TRANSITIONS = _refuses_invalid_transitions()


class InvalidTransitionGuard:
    """Mixin for an rclpy LifecycleNode subclass (put it first among the bases): a transition
    that the current state does not allow is refused with ERROR on every distro.

    On Jazzy, rcl raises RCLError for it, inside `trigger_activate()` and the like and, worse,
    inside the `~/change_state` service callback, where it ends the executor's spin: one
    `ChangeState` request with such a transition id (what Nav2's lifecycle manager sends) stops
    the whole node. Kilted logs the error and answers `success=false`; this mixin gives Jazzy
    that behaviour. Where rclpy already does so it adds nothing.
    """

    def _LifecycleNodeMixin__change_state(self, transition_id: int):  # noqa: N802
        change = LifecycleNodeMixin._LifecycleNodeMixin__change_state  # type: ignore[attr-defined]
        if LIFECYCLE_REFUSES_INVALID_TRANSITIONS:
            return change(self, transition_id)
        try:
            return change(self, transition_id)
        except _rclpy.RCLError as exc:
            state = self._state_machine.current_state  # (id, label)
            self.get_logger().error(
                f"lifecycle transition {transition_id} refused in state '{state[1]}': "
                + " ".join(str(exc).split()))
            return TransitionCallbackReturn.ERROR


_QUERY_SERVICES = ("_service_get_state", "_service_get_available_states",
                   "_service_get_available_transitions", "_service_get_transition_graph")


def move_lifecycle_queries(node: LifecycleNodeMixin, group: Any,
                           get_state: Callable[[Any, Any], Any]) -> None:
    """Move a lifecycle node's query services into `group` and answer `~/get_state` with
    `get_state(request, response)`.

    rclpy (Jazzy and Kilted alike) creates all five lifecycle services in one callback group,
    the one `~/change_state` runs its transition callbacks in: with a mutually exclusive group
    a get_state waits for a whole configure. The services are the private `_service_*`
    attributes of `LifecycleNodeMixin` on both distros; the executor reads an entity's
    `callback_group` each time it builds its wait set, so moving them is enough.
    """
    for attr in _QUERY_SERVICES:
        srv = getattr(node, attr, None)
        if srv is not None:
            _move_service(srv, group)
    node._service_get_state.callback = get_state


def _move_service(srv: Any, group: Any) -> None:
    """Serve `srv` from `group`: the executor reads an entity's `callback_group` each time it
    builds its wait set."""
    old = srv.callback_group
    if old is not None:
        old.entities.discard(weakref.ref(srv))
    srv.callback_group = group
    group.add_entity(srv)


_PARAMETER_QUERIES = ("get_parameters", "get_parameter_types", "list_parameters",
                      "describe_parameters")


def move_parameter_queries(node: Any, group: Any) -> int:
    """Move a node's parameter read services (get, types, list, describe) into `group`;
    how many were moved.

    rclpy creates all six parameter services in the node's default callback group, which is
    mutually exclusive: a read waits for any set_parameters callback in flight. The services
    are found by name among `node.services` (rclpy keeps no other handle to them, on Jazzy and
    Kilted alike); the sets stay in the default group, so they still run one at a time.
    """
    moved = 0
    for srv in list(node.services):
        if srv.srv_name.rsplit("/", 1)[-1] in _PARAMETER_QUERIES:
            _move_service(srv, group)
            moved += 1
    return moved
