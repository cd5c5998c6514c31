"""Process plumbing shared by the executables: one-line start-up errors and orderly shutdown."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from ovseg_ros.node.compat import shutdown_executor

N = TypeVar("N", bound=Node)


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, for logs that a robot operator reads."""
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


def start_node(make: Callable[[], N], logger: str) -> tuple[N | None, int]:
    """Construct a node after rclpy.init. (node, 0), or (None, exit code) after a failure.

    A failure (bad weights, missing source, invalid parameter) is one fatal log line and exit
    code 1, never a traceback; Ctrl-C during construction is a clean exit 0.
    """
    try:
        return make(), 0
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()
        return None, 0
    except Exception as exc:
        rclpy.logging.get_logger(logger).fatal(f"start-up failed: {one_line(exc)}")
        rclpy.try_shutdown()
        return None, 1


def spin_node(node: Node, executor: Executor | None = None,
              before_destroy: Callable[[], Any] | None = None) -> None:
    """Spin until Ctrl-C or an external shutdown, then tear down in order."""
    try:
        if executor is None:
            rclpy.spin(node)
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if before_destroy is not None:
            before_destroy()
        node.destroy_node()
        rclpy.try_shutdown()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run(make: Callable[[], Node], logger: str, args: list[str],
         threads: int) -> tuple[int, list[str]]:
    """Start, spin until SIGINT/SIGTERM, shut down. (exit code, work still running)."""
    # rclpy's handlers shut the context down and then call the previous Python handler: for
    # SIGINT that raises KeyboardInterrupt, for SIGTERM nothing, so a SIGTERM during the
    # (long) model load would go unnoticed until the first ROS call fails. Make both raise.
    signal.signal(signal.SIGTERM, _interrupt)
    rclpy.init(args=args)
    node, rc = start_node(make, logger)
    if node is None:
        return rc, []
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    joined = True

    def stop() -> None:
        nonlocal joined
        if hasattr(node, "shutdown"):  # the node's own worker threads
            joined = node.shutdown(timeout=1.0)
        # Joining the executor's threads would wait for a callback stuck in text encoding
        # (rclpy's timeout does not bound that join); run_main exits without them instead.
        shutdown_executor(executor, timeout_sec=0.3, wait_for_threads=joined)

    spin_node(node, executor, before_destroy=stop)
    return 0, list(getattr(node, "still_running", []))


def run_main(make: Callable[[], Node], logger: str, args: list[str], threads: int = 4,
             fast_exit: bool = True) -> int:
    """A node's process: multi-threaded executor, clean exit on SIGINT/SIGTERM within 2 s.

    A node with `shutdown(timeout) -> bool` and `still_running` (SegmentNode) is stopped
    first. Work that cannot be interrupted (a frame inside the model, text being encoded) is
    not waited for after 1 s: the process exits without it. With `fast_exit` the process also
    skips the interpreter's native teardown (torch, DDS), which takes seconds on a loaded
    machine, once ROS is shut down in order.
    """
    rc, still_running = _run(make, logger, args, threads)
    for what in still_running:
        print(f"{logger}: {what} at shutdown; not waiting for it", file=sys.stderr, flush=True)
    if fast_exit or still_running:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc
