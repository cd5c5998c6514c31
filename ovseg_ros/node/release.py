"""Cleanup gives the model's memory back: a collection once nothing reaches the model, then
glibc's trim (core.device.release_memory), and again on a timer while something still does.

The model sits in reference cycles (the callbacks configure makes refer back to their owners),
so only a collection frees it, and only once nothing outside reaches it. Something may still
do so for a moment: a service coroutine awaiting its last answer, a diagnostics callback in
flight, rclpy's executor waiting on a wait set built before deactivate destroyed the input
subscriptions. A collection then frees nothing, and a quiet node may not collect its oldest
generation again for a long time: the model's hundreds of MB stayed resident. So while the
model is alive after the collection, collect again after RETRY_S, doubling, at most TRIES
times; then warn once, since a reference that lasts that long is a leak.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from rclpy.callback_groups import CallbackGroup

from ovseg_ros.core.device import release_memory

RETRY_S = 0.1  # the first retry's delay; each next one waits twice as long
TRIES = 7  # 0.1 + 0.2 + ... + 6.4: about 13 s in all


class MemoryRelease:
    """One per node: `release(weak references to the model's parts, device)` once cleanup
    dropped the node's own references."""

    def __init__(self, node: Any, group: CallbackGroup) -> None:
        self.node, self.group = node, group
        self._lock = threading.Lock()
        self._timers: set[Any] = set()
        self.retries = 0  # collections after the first one (tests, diagnostics)
        self.leaked = 0  # models still alive after every retry

    def release(self, parts: Sequence[weakref.ref], device: Any) -> bool:
        """Collect and trim now; True when every object of `parts` (weak references, taken
        before the strong ones were dropped) is gone. Otherwise retries on the node's timers.
        """
        release_memory(device)
        if not _alive(parts):
            return True
        self._later(parts, device, RETRY_S, TRIES)
        return False

    def _later(self, parts: Sequence[weakref.ref], device: Any, delay: float, tries: int
               ) -> None:
        timer = None

        def retry() -> None:
            with self._lock:
                if timer not in self._timers:  # fired twice
                    return
                self._timers.discard(timer)
            timer.cancel()
            self.node.destroy_timer(timer)
            self.retries += 1
            release_memory(device)
            if not _alive(parts):
                return
            if tries > 1:
                self._later(parts, device, delay * 2, tries - 1)
            else:
                self.leaked += 1
                self.node.get_logger().warning(
                    "cleanup: the unloaded model is still referenced after "
                    f"{TRIES} collections; its memory is not given back")

        if not self.node.context.ok():  # shutting down: the process ends anyway
            return
        with self._lock:
            try:
                timer = self.node.create_timer(delay, retry, callback_group=self.group)
            except Exception:  # the context shut down meanwhile (a signal): as above
                return
            self._timers.add(timer)


def _alive(parts: Sequence[weakref.ref]) -> bool:
    return any(ref() is not None for ref in parts)
