"""Helpers for tests that run nodes over real rclpy with a background multi-threaded executor.

test/conftest.py's fixtures spin a single-threaded executor from the test thread; the
segmentation node needs its worker thread and services answered while the test blocks, so
here one executor spins in a background thread and tests wait on thread-safe collectors.

    with RosHarness(domain_id) as ros:
        node = ros.add(SegmentNode(context=ros.context, parameter_overrides=[...]))
        labels = ros.collect(Image, "/ovseg/labels")
        ros.publish_until(pub, make_msg, lambda: labels.count >= 3)
"""
from __future__ import annotations

import statistics
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np


class Collector:
    """Thread-safe record of the messages received on one topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Any] = []
        self.times: list[float] = []
        self.subscription: Any = None  # set by RosHarness.collect

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)
            self.times.append(time.monotonic())

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def last(self) -> Any:
        with self._lock:
            return self.messages[-1] if self.messages else None

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.times.clear()


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, period: float = 0.02) -> bool:
    """Poll until predicate() (True) or timeout (False). The generous default is a bound, not a
    speed requirement: the test machines stall whole processes for seconds at times."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(period)
    return True


MAX_SPIN_ERRORS = 20  # callback failures in one test after which the harness stops spinning


class RosHarness:
    """An rclpy Context on `domain_id` with the node process's executor (SteadyExecutor, a
    MultiThreadedExecutor) spinning in a thread."""

    def __init__(self, domain_id: int, threads: int = 4) -> None:
        import rclpy
        from rclpy.context import Context

        from ovseg_ros.node.executor import SteadyExecutor

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = SteadyExecutor(num_threads=threads, context=self.context)
        self.nodes: list[Any] = []
        self._helper = None
        self._errors: list[str] = []
        self._errors_lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from ovseg_ros.node.runner import spin_executor

        # A callback that raises ends the spin; the harness outlives the test that caused it
        # (it serves a whole module), so keep spinning and keep the traceback for
        # `take_errors` (NodeFactory fails that test with it) instead of timing out the rest.
        while self.context.ok():
            try:
                spin_executor(self.executor)  # the node's own policy for rclpy's races
                return
            except Exception:
                if not self.context.ok():
                    return
                with self._errors_lock:
                    self._errors.append(traceback.format_exc())
                    if len(self._errors) >= MAX_SPIN_ERRORS:  # a lasting fault: no hot loop
                        return

    def take_errors(self) -> list[str]:
        """Tracebacks of callbacks that raised in the harness executor since the last call."""
        with self._errors_lock:
            errors, self._errors = self._errors, []
        return errors

    @property
    def helper(self):
        """A plain node for the test's own publishers, subscriptions and clients."""
        if self._helper is None:
            from rclpy.node import Node

            self._helper = self.add(Node("test_helper", context=self.context))
        return self._helper

    def add(self, node: Any) -> Any:
        self.nodes.append(node)
        self.executor.add_node(node)
        self.executor.wake()
        return node

    def remove(self, node: Any) -> None:
        if hasattr(node, "close"):  # stop the worker before its publishers go away
            node.close(timeout=3.0)
        self.executor.remove_node(node)
        self.nodes.remove(node)
        self.executor.wake()
        time.sleep(0.05)  # let a callback already taken by the executor finish
        node.destroy_node()

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> Collector:
        collector = Collector()
        collector.subscription = self.helper.create_subscription(msg_type, topic, collector, qos)
        self.executor.wake()
        return collector

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 20.0) -> Any:
        client = self.helper.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
            future = client.call_async(request)
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            assert done.wait(timeout), f"service {name} did not answer in {timeout} s"
            return future.result()
        finally:
            self.helper.destroy_client(client)

    def set_params(self, node_name: str, params: list[Any], timeout: float = 20.0) -> list[Any]:
        """Set parameters through the node's parameter service (as `ros2 param set` does)."""
        from rcl_interfaces.srv import SetParameters

        req = SetParameters.Request(parameters=[p.to_parameter_msg() for p in params])
        return self.call(SetParameters, f"{node_name}/set_parameters", req, timeout).results

    def close(self) -> None:
        for node in list(reversed(self.nodes)):
            try:
                self.remove(node)
            except Exception:
                pass
        self.executor.shutdown(timeout_sec=2.0)
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> RosHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def image_fields_msg(rgb: np.ndarray, encoding: str = "rgb8", stamp: Any = None,
                     frame_id: str = "cam"):
    """sensor_msgs/Image with `rgb` (H, W, 3) uint8 as rgb8 or bgr8 (channels swapped)."""
    import array

    from sensor_msgs.msg import Image

    if encoding == "bgr8":
        rgb = rgb[..., ::-1]
    data = np.ascontiguousarray(rgb)
    msg = Image(height=data.shape[0], width=data.shape[1], encoding=encoding,
                step=data.shape[1] * 3, is_bigendian=0)
    buf = array.array("B")
    buf.frombytes(data.tobytes())
    msg.data = buf
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def stream_frames(ros: RosHarness, ns: str, stop: threading.Event) -> threading.Thread:
    """A small picture on `ns`/image (reliable) every 0.1 s until `stop` is set; the thread."""
    from sensor_msgs.msg import Image

    from ovseg_ros.node import qos as Q

    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(2))

    def run() -> None:
        while not stop.is_set():
            pub.publish(image_fields_msg(make_picture(24, 32), stamp=now(ros)))
            stop.wait(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def make_picture(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """A deterministic picture with a few coloured blocks (something for the model to split)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (40, 90, 160)
    img[h // 3:, : w // 2] = (200, 60, 50)
    img[h // 2:, w // 2:] = (60, 170, 70)
    noise = rng.integers(0, 25, size=img.shape, dtype=np.uint8)
    return (img + noise).astype(np.uint8)


def publish_at(ros: RosHarness, pubs: list, rate_hz: float, frames: list[Any], node: Any,
               duration: float = 6.0, until=None, max_duration: float = 45.0
               ) -> tuple[int, list[int]]:
    """Publish frames[i] on pubs[i] at rate_hz each, restamped with ROS time, for `duration`
    s and then, if given, until `until()` holds (at most `max_duration` s): a process on this
    shared box can stall for a moment, which must not starve the test of outputs.
    Returns (rounds sent, the worker's pending-item counts sampled every round)."""
    pending, sent = [], 0
    start = next_t = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= max_duration or (elapsed >= duration and (until is None or until())):
            break
        stamp = ros.helper.get_clock().now().to_msg()
        for pub, msg in zip(pubs, frames, strict=True):
            msg.header.stamp = stamp
            pub.publish(msg)
        sent += 1
        pending.append(node.worker.stats().pending_items)
        next_t += 1.0 / rate_hz
        time.sleep(max(0.0, next_t - time.monotonic()))
    return sent, pending


def assert_latency_does_not_grow(msgs: list[Any], what: str) -> None:
    """Queue delay (latency minus the frame's own inference) stays about one inference.

    With the latest frame winning, a frame waits at most for the inference in progress; a
    queue would add about one input period per frame, so every output of the last third would
    wait seconds. The least delay of the last third is asserted: a stall of the whole process
    (a shared machine's) delays the two or three outputs in flight during it, and the next
    frame taken is a fresh one again, while a queue delays them all."""
    lat = [m.latency_ms for m in msgs]
    wait = [m.latency_ms - m.inference_ms for m in msgs]
    third = max(1, len(lat) // 3)
    infer = statistics.median(m.inference_ms for m in msgs)
    late_wait = min(wait[-third:])
    print(f"{what}: {len(lat)} outputs, latency median first third "
          f"{statistics.median(lat[:third]):.0f} ms, last third "
          f"{statistics.median(lat[-third:]):.0f} ms, max {max(lat):.0f} ms; median inference "
          f"{infer:.0f} ms, queue delays of the last third "
          f"{', '.join(f'{w:.0f}' for w in wait[-third:])} ms")
    assert late_wait < 2.0 * infer + 150.0, (infer, wait[-third:])


def stamp(sec: int, nsec: int = 0):
    from builtin_interfaces.msg import Time

    return Time(sec=sec, nanosec=nsec)


def now(ros):
    return ros.helper.get_clock().now().to_msg()


def send_until(pub, make_msg, done, timeout=60.0, period=0.05) -> bool:
    """Publish make_msg() every `period` until done() (frames may be dropped on the way)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        pub.publish(make_msg())
        time.sleep(period)
    return True


def labels_array(msg: Any) -> np.ndarray:
    """A mono8/mono16 label Image message as an (H, W) array."""
    dtype = np.uint8 if msg.encoding == "mono8" else np.dtype("<u2")
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


