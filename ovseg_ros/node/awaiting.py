"""Awaiting work done on another thread from a coroutine service callback, without holding an
executor thread.

rclpy runs an `async def` callback as a task: `await` on an rclpy Future that is not done
yields, the executor thread goes back to the pool, and the executor resumes the task in a
later round. A round starts when something wakes the executor: here the Future's done
callback, which the executor schedules as a task of its own (and thereby wakes it) when the
worker thread completes the Future. Same on Jazzy and Kilted.
"""

from __future__ import annotations

from concurrent.futures import Future as ThreadFuture
from typing import Any

from rclpy.task import Future


async def wait_for(node: Any, work: ThreadFuture) -> Any:
    """The result of `work` (a concurrent.futures.Future completed by a worker thread), or its
    exception raised here; the calling task is suspended meanwhile."""
    if work.done():
        return work.result()
    executor = node.executor
    future: Future = Future(executor=executor)
    future.add_done_callback(lambda _: None)  # its scheduling wakes the executor

    def finished(done: ThreadFuture) -> None:  # on the worker thread
        exc = done.exception()
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(done.result())

    work.add_done_callback(finished)
    return await future
