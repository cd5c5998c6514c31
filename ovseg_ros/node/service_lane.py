"""Services whose excess must cost the frames little (~/query, ~/encode_text, ~/pixel_classes,
~/set_prompts), answered on a thread of their own that takes at most `rate_hz()` requests per
second.

Refusing a request is cheap for the node's logic, but every request rclpy takes and answers
costs Python work under the interpreter's lock, beside the frames: clients that called ~/query
again at once after each refusal (8 threads, 920 calls/s) took over half of the node's CPU, and
the frames fell to 0.3x of their rate. Here a request beyond the rate waits in the middleware
instead; a client's next call comes only after its answer, so clients that never back off are
slowed to the rate rather than the node answering at theirs. The middleware keeps at most
`depth` requests per service (keep last): beyond that the oldest is dropped unanswered and its
client times out, which bounds the backlog whatever the clients do. Only requests count
against the rate: a coroutine resumed after the work it awaited was taken already.

The services live on a node of their own (`<owner>_requests`, in the owner's namespace, without
the process's command-line arguments: rclpy executors take whole nodes), under the owner's
names. Its parameter services answer (it holds only ROS's own, such as use_sim_time), so tools
that ask every node (`ros2 param list`) get an answer instead of waiting for a timeout.
One call per service; the callback may be a coroutine:

    lane = ServiceLane(node, rate_hz=lambda: 40.0)
    lane.create_service(PixelInfo, "~/pixel_info", callback)  # "~/": the owner's name
    result = await lane.wait_for(future)  # in a coroutine callback: a worker thread's Future
    lane.close()  # before the owner is destroyed (SegmentNode.destroy_node)
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    ShutdownException,
    SingleThreadedExecutor,
    TimeoutException,
)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.service import Service

from ovseg_ros.node.awaiting import wait_for
from ovseg_ros.node.compat import shutdown_executor
from ovseg_ros.node.diagnostics import one_line
from ovseg_ros.node.runner import RaceCount

DEPTH = 10  # requests per service the middleware keeps waiting (ROS's default for services)
IDLE_WAIT_S = 0.5  # how long one wait for requests lasts (the thread checks for close)


class ServiceLane:
    """A node for services, spun by a thread of its own at most `rate_hz()` requests per
    second (0 = no bound; read before each rest, so it may change at any time)."""

    def __init__(self, owner: Node, rate_hz: Callable[[], float], depth: int = DEPTH,
                 suffix: str = "requests") -> None:
        self.owner, self.rate_hz = owner, rate_hz
        self.node = Node(f"{owner.get_name()}_{suffix}", namespace=owner.get_namespace(),
                         context=owner.context, use_global_arguments=False,
                         enable_rosout=False)
        self.qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                              reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
        # Reentrant: a coroutine awaiting its work must not hold up the next request.
        self.group = ReentrantCallbackGroup()
        self.executor = SingleThreadedExecutor(context=owner.context)
        self.executor.add_node(self.node)
        self.taken = 0  # requests taken so far
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._spin, name=f"ovseg-{suffix}", daemon=True)
        self._thread.start()

    def create_service(self, srv_type: Any, name: str, callback: Callable[..., Any]) -> Service:
        """A service named as the owner would name it (`~/x` is the owner's private name)."""
        return self.node.create_service(srv_type, self.owner.resolve_service_name(name),
                                        callback, qos_profile=self.qos,
                                        callback_group=self.group)

    async def wait_for(self, work: ThreadFuture) -> Any:
        """In a coroutine callback of this lane: the result of a worker thread's Future."""
        return await wait_for(self.node, work)

    def _spin(self) -> None:
        try:
            self._serve()
        except Exception:
            # e.g. RCLError from a wait set made while a signal shuts the context down
            if self._stop.is_set() or not self.owner.context.ok():
                return  # shutting down: nothing is lost
            raise

    def _serve(self) -> None:
        started: weakref.WeakSet = weakref.WeakSet()  # tasks run before: resumptions
        races = RaceCount()
        while not self._stop.is_set():
            try:
                handler, entity, _ = self.executor.wait_for_ready_callbacks(
                    timeout_sec=IDLE_WAIT_S)
            except (TimeoutException, ConditionReachedException):
                continue
            except (ShutdownException, ExternalShutdownException):
                return
            except InvalidHandle:  # rclpy's destroyed-entity race (see runner.spin_executor)
                if not self.owner.context.ok():
                    return
                if races.lasting():
                    raise
                continue
            request = isinstance(entity, Service) and handler not in started
            started.add(handler)
            t0 = time.monotonic()
            handler()
            if handler.done() and handler.exception() is not None:  # our callbacks catch all
                self.owner.get_logger().error(
                    f"service callback failed: {one_line(handler.exception())}",
                    throttle_duration_sec=5.0)
            del handler, entity
            if request:
                self.taken += 1
                rate = float(self.rate_hz())
                rest = 1.0 / rate - (time.monotonic() - t0) if rate > 0 else 0.0
                if rest > 0:
                    self._rest(rest)

    def _rest(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def close(self, timeout: float = 1.0) -> bool:
        """Stop taking requests, end the thread and destroy the node; False when a callback
        still ran after `timeout` (the node is destroyed anyway). Safe to call twice."""
        if self._closed:
            return True
        self._closed = True
        self._stop.set()
        shutdown_executor(self.executor, timeout_sec=timeout)
        self._thread.join(timeout)
        joined = not self._thread.is_alive()
        self.node.destroy_node()
        return joined
