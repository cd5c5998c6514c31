"""Process plumbing shared by the executables: one-line start-up errors and orderly shutdown.

Signals: the first SIGINT or SIGTERM starts the shutdown; every later one (a double Ctrl-C,
`ros2 launch` forwarding the terminal's SIGINT and then sending its own) is ignored, so the
shutdown is never interrupted half-way and the process exits 0 within about 2 s.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import rclpy
from rclpy.exceptions import InvalidHandle
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    ShutdownException,
    SingleThreadedExecutor,
)
from rclpy.node import Node

from ovseg_ros.node.compat import shutdown_executor, try_shutdown
from ovseg_ros.node.diagnostics import one_line
from ovseg_ros.node.executor import SteadyExecutor

N = TypeVar("N", bound=Node)
_stopping = False


def _on_signal(signum: int, frame: Any) -> None:
    """Python-level handler behind rclpy's (which shuts the context down first): interrupt the
    main thread once; later signals arrive while shutting down and are dropped."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    """Call before rclpy.init, which chains its handlers to these."""
    global _stopping
    _stopping = False
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _shutting_down() -> None:
    """From here on a signal must not raise: the teardown runs to its end."""
    global _stopping
    _stopping = True


def shutdown_rclpy() -> None:
    """Shut the default context down if it is still up; a context already shut down is fine.

    rclpy's signal handler shuts the context down from its own thread while ours raises in the
    main thread, so `ok()` may still say True here when rcl_shutdown has just been called:
    Jazzy's `try_shutdown` then raises RCLError ("rcl_shutdown already called"), Kilted's
    does not. Idempotent on both.
    """
    try:
        try_shutdown()
    except Exception:
        if rclpy.ok():  # a real failure, not a context shut down meanwhile
            raise


def start_node(make: Callable[[], N], logger: str) -> tuple[N | None, int]:
    """Construct a node after rclpy.init. (node, 0), or (None, exit code) after a failure.

    A failure (bad weights, missing source, invalid parameter, an autostart configure that
    failed) is one fatal log line and exit code 1, never a traceback; Ctrl-C during
    construction is a clean exit 0.
    """
    try:
        node = make()
    except (KeyboardInterrupt, ExternalShutdownException):
        _shutting_down()
        shutdown_rclpy()
        return None, 0
    except Exception as exc:
        _shutting_down()
        rclpy.logging.get_logger(logger).fatal(f"start-up failed: {one_line(exc)}")
        shutdown_rclpy()
        return None, 1
    failed = getattr(node, "start_failure", lambda: None)()
    if failed and not node.context.ok():  # a signal during start-up: a stop, not a failure
        _shutting_down()
        node.destroy_node()
        shutdown_rclpy()
        return None, 0
    if failed:
        _shutting_down()
        rclpy.logging.get_logger(logger).fatal(f"start-up failed: {failed}")
        node.destroy_node()
        shutdown_rclpy()
        return None, 1
    return node, 0


def freeze_imported_objects() -> None:
    """Put every object alive now (the modules of torch, open_clip and rclpy: ~400,000) into
    the garbage collector's permanent generation, once per process, before the node exists.

    A full collection (`core.device.release_memory` after cleanup) walks every tracked object
    while holding the GIL: 0.8 s on 2 cores with nothing else running, during which no
    service of the node answers (a get_state took up to 1 s in a storm test). Frozen, it
    walks only what was created since: the models and their garbage.
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


_frozen = False
RACE_BURST = 100  # InvalidHandle raises within RACE_WINDOW_S that mean a lasting fault
RACE_WINDOW_S = 1.0


class RaceCount:
    """rclpy's destroyed-entity races ridden over (spin_executor's docstring): `lasting()`
    after one is True when `RACE_BURST` came within one `RACE_WINDOW_S`, a fault to raise."""

    def __init__(self) -> None:
        self.total, self._burst, self._start = 0, 0, time.monotonic()

    def lasting(self) -> bool:
        now = time.monotonic()
        if now - self._start > RACE_WINDOW_S:
            self._burst, self._start = 0, now
        self._burst += 1
        self.total += 1
        return self._burst >= RACE_BURST


def spin_executor(executor: Executor) -> int:
    """executor.spin() until its context or the executor shuts down, riding over rclpy's
    destroyed-entity race; returns how many times it rode over it.

    An entity destroyed in one thread (deactivate drops the image subscription and its QoS
    event handler) while the executor builds its wait set in another makes spin() raise
    InvalidHandle ("destruction was requested"; rclpy issues #1142, #1284), which would end a
    healthy node. The entity is gone on purpose and nothing is lost: spin on. The race is
    one wait set long, so `RACE_BURST` raises within one `RACE_WINDOW_S` are no race but an
    entity used after its destruction for good: that is raised, not spun on as a hot loop.
    """
    races = RaceCount()
    while True:
        try:
            executor.spin()
            return races.total
        except (ExternalShutdownException, ShutdownException):
            return races.total
        except InvalidHandle:
            if not executor.context.ok():
                return races.total
            if races.lasting():
                raise


class SpinThread:
    """An executor spun (`spin_executor`) in a thread of its own until `stop()`, which shuts the
    executor down and joins the thread.

    A spinner still inside rclpy when the interpreter exits aborts the process ("terminate
    called without an active exception"): Python ends a daemon thread that waits for the GIL
    at exit with pthread_exit, whose unwinding through rclpy's C++ frames calls
    std::terminate. So every spinner is stopped and joined before its owner returns.
    """

    def __init__(self, executor: Executor, name: str = "ros-spin") -> None:
        self.executor = executor
        self._thread = threading.Thread(target=spin_executor, args=(executor,), name=name,
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """True when the thread ended within `timeout` (s)."""
        shutdown_executor(self.executor, timeout_sec=timeout)
        self._thread.join(timeout)
        return not self._thread.is_alive()


def exit_process(rc: int) -> None:
    """Flush and end the process now, skipping the interpreter's native teardown (torch,
    ONNX Runtime, DDS): seconds on a loaded machine, and a thread left inside native code
    then aborts the process. Call once ROS is shut down and the results are written."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def spin_node(node: Node, executor: Executor | None = None,
              before_destroy: Callable[[], Any] | None = None) -> None:
    """Spin until Ctrl-C or an external shutdown, then tear down in order."""
    if executor is None:
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
    try:
        spin_executor(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A signal shuts the context down from C; a wait set made just then fails with
        # "the given context is not valid" (RCLError) instead of ExternalShutdownException.
        if node.context.ok():
            raise
    finally:
        _shutting_down()
        if before_destroy is not None:
            before_destroy()
        node.destroy_node()
        shutdown_rclpy()


def _run(make: Callable[[], Node], logger: str, args: list[str],
         threads: int) -> tuple[int, list[str]]:
    """Start, spin until SIGINT/SIGTERM, shut down. (exit code, work still running)."""
    install_signal_handlers()
    try:
        freeze_imported_objects()
        rclpy.init(args=args)
    except KeyboardInterrupt:  # a signal before the node exists: nothing to stop
        _shutting_down()
        shutdown_rclpy()
        return 0, []
    node, rc = start_node(make, logger)
    if node is None:
        return rc, []
    if hasattr(node, "on_finalized"):  # a lifecycle shutdown ends the process, exit code 0
        # (after a moment, so that the change_state response is sent first)
        node.on_finalized = lambda: threading.Timer(0.3, shutdown_rclpy).start()
    executor = (SteadyExecutor(num_threads=threads) if threads > 1
                else SingleThreadedExecutor())
    executor.add_node(node)
    joined = True

    def stop() -> None:
        nonlocal joined
        if hasattr(node, "close"):  # the node's own worker threads
            joined = node.close(timeout=1.0)
        # Joining the executor's threads would wait for a callback stuck in text encoding
        # (rclpy's timeout does not bound that join); run_main exits without them instead.
        shutdown_executor(executor, timeout_sec=0.3, wait_for_threads=joined)

    spin_node(node, executor, before_destroy=stop)
    return 0, list(getattr(node, "still_running", []))


def run_main(make: Callable[[], Node], logger: str, args: list[str], threads: int = 4,
             fast_exit: bool = True) -> int:
    """A node's process: multi-threaded executor, clean exit on SIGINT/SIGTERM within 2 s.

    A node with `close(timeout) -> bool` and `still_running` (SegmentNode) is stopped first.
    Work that cannot be interrupted (a frame inside the model, text being encoded) is not
    waited for after 1 s: the process exits without it. With `fast_exit` the process also
    skips the interpreter's native teardown (torch, DDS), which takes seconds on a loaded
    machine, once ROS is shut down in order.
    """
    rc, still_running = _run(make, logger, args, threads)
    for what in still_running:
        print(f"{logger}: {what} at shutdown; not waiting for it", file=sys.stderr, flush=True)
    if fast_exit or still_running:
        exit_process(rc)
    return rc
