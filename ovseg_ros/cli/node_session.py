"""A short-lived rclpy client of a running ovseg node: call one of its services, or wait for
one message of its topics, each bounded in time; for the `ovseg prompts/query/param/watch`
commands (cli/client.py), which give an install without ros2cli the README's calls.

rclpy is imported when a session opens, never at import: the `ovseg` command must keep working
where there is no ROS at all (segment, bag, labelspace, eval, weights).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

# How long a node that was found may take to answer a service (or the session's timeout, when
# longer): a vocabulary change encodes its new names first (about 70 ms a name on a 2-core CPU,
# seconds on a busy one), and a node still loading its model (its services exist from the
# start) answers once it has: a first start exports the encoder and times the backends (a
# minute or two on a 2-core CPU), and downloads the weights where they are missing.
ANSWER_TIMEOUT_S = 300.0
# How long the clients wait for the node to appear by default: a node started a moment ago
# takes seconds (its imports) before its services exist. After NOTICE_AFTER_S without it, the
# client says once on stderr that it is waiting.
FIND_TIMEOUT_S = 30.0
NOTICE_AFTER_S = 3.0


class NoAnswer(RuntimeError):
    """No node offered the service or topic within the timeout, or it did not answer."""


class RosMissing(RuntimeError):
    """rclpy (or this package's generated interfaces) cannot be imported here."""


def node_path(name: str) -> str:
    """'/ovseg', 'ovseg' or '/robot1/ovseg/' -> the absolute node name ('/ovseg', ...)."""
    name = "/" + name.strip().strip("/")
    if name == "/":
        raise ValueError("--node: give the node's name, e.g. /ovseg")
    return name


def no_node(node: str, timeout: float) -> str:
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    local = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST"
    return (f"no node {node} answered within {timeout:g} s; is it running, in this "
            f"ROS_DOMAIN_ID? (here: {domain}" + ("; ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST "
                                                 "finds nodes on this machine only" if local
                                                 else "") + ")")


class NodeSession:
    """with NodeSession('/ovseg', timeout=5.0) as s: s.call(SetPrompts, 'set_prompts', req)"""

    def __init__(self, node: str, timeout: float) -> None:
        self.node_name, self.timeout = node_path(node), timeout
        self.context = self.node = self.executor = None

    def __enter__(self) -> NodeSession:
        try:
            import rclpy
            from rclpy.context import Context
            from rclpy.executors import SingleThreadedExecutor
            from rclpy.node import Node
            from rclpy.signals import SignalHandlerOptions
        except ImportError as exc:
            raise RosMissing(f"this command talks to a running node over ROS 2 and needs "
                             f"rclpy ({exc}): source scripts/env.sh, or a ROS 2 install") from None
        self.context = Context()
        # Python's own Ctrl-C handling stays: `ovseg` ends with one line and exit code 130.
        rclpy.init(args=[], context=self.context,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(f"ovseg_cli_{os.getpid()}", context=self.context,
                         start_parameter_services=False, enable_rosout=False)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=1.0)
        if self.node is not None:
            self.node.destroy_node()
        if self.context is not None:
            self.context.try_shutdown()

    def wait(self, found: Callable[[float], bool], what: str) -> bool:
        """Whether `found(seconds)`, which waits up to that long, finds `what` within the
        timeout; says once that it waits when that takes more than NOTICE_AFTER_S."""
        first = min(self.timeout, NOTICE_AFTER_S)
        if found(first):
            return True
        if self.timeout <= first:
            return False
        print(f"ovseg: waiting up to {self.timeout:g} s for {what} (is the node starting?)",
              file=sys.stderr, flush=True)
        return found(self.timeout - first)

    def name(self, relative: str) -> str:
        """'set_prompts' -> '/ovseg/set_prompts'."""
        return f"{self.node_name}/{relative.strip('/')}"

    def call(self, srv_type: Any, relative: str, request: Any) -> Any:
        """The response of the node's service `relative`; NoAnswer when no node offers it
        within the timeout, or it does not answer within ANSWER_TIMEOUT_S (or the timeout, when
        longer)."""
        service = self.name(relative)
        answer_s = max(ANSWER_TIMEOUT_S, self.timeout)
        client = self.node.create_client(srv_type, service)
        try:
            if not self.wait(lambda s: client.wait_for_service(timeout_sec=s), service):
                raise NoAnswer(no_node(self.node_name, self.timeout))
            future = client.call_async(request)
            self.executor.spin_until_future_complete(future, timeout_sec=NOTICE_AFTER_S)
            if not future.done():  # a node still loading its model answers once it has
                print(f"ovseg: waiting up to {answer_s:g} s for {service} to answer (a node "
                      "loading its model answers once it has)", file=sys.stderr, flush=True)
                self.executor.spin_until_future_complete(
                    future, timeout_sec=answer_s - NOTICE_AFTER_S)
            if not future.done():
                raise NoAnswer(f"{service} did not answer within {answer_s:g} s (a node on its "
                               "first start may take longer: wait for its 'ready: active' "
                               "line, or give --timeout)")
            if future.exception() is not None:
                raise NoAnswer(f"{service} failed: {future.exception()}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def messages(self, msg_type: Any, relative: str, count: int, wait_s: float):
        """Yield the next `count` messages of the node's topic `relative` (0: until
        interrupted). NoAnswer when nothing publishes it within the timeout, or no message
        comes within `wait_s` (a camera that stopped, a node that is not active)."""
        from rclpy.qos import qos_profile_sensor_data

        topic = self.name(relative)

        def published(seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while self.node.count_publishers(topic) == 0:
                if time.monotonic() > deadline:
                    return False
                self.executor.spin_once(timeout_sec=0.05)
            return True

        if not self.wait(published, topic):
            raise NoAnswer(no_node(self.node_name, self.timeout) + f" (nothing publishes "
                           f"{topic})")
        got: list[Any] = []
        # Best effort accepts the node's reliable publisher too, and never holds it back.
        sub = self.node.create_subscription(msg_type, topic, got.append,
                                            qos_profile_sensor_data)
        try:
            shown = 0
            while count == 0 or shown < count:
                deadline = time.monotonic() + wait_s
                while not got:
                    if time.monotonic() > deadline:
                        raise NoAnswer(f"{topic}: no message within {wait_s:g} s (is the node "
                                       "active, and does its camera publish?)")
                    self.executor.spin_once(timeout_sec=0.05)
                yield got.pop(0)
                shown += 1
        finally:
            self.node.destroy_subscription(sub)
