"""One worker thread fed by a one-slot "latest frame wins" buffer. ROS-free.

Subscription callbacks only `submit` a message (no decoding, no copies): if the worker is busy
the waiting message is replaced and counted as dropped, so slow inference can never build a
queue and the output always belongs to the newest input.

Shutdown: `stop()` wakes the worker and joins it with a timeout. A frame already inside the
model cannot be interrupted (PyTorch offers no safe cancellation), so `stop()` returns False
when that frame outlives the timeout; the caller then exits the process without waiting for it
(see segment_node.main).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerStats:
    """A consistent snapshot of the counters."""

    submitted: int  # items handed to submit()
    dropped: int  # items replaced in the slot before the worker took them
    processed: int  # handler calls that returned normally
    failed: int  # handler calls that raised
    busy: bool  # the handler is running right now
    pending: bool  # an item waits in the slot


class LatestSlot(Generic[T]):
    """A one-item buffer: `put` replaces what is there, `take` waits for an item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._in_flight = False  # set atomically with take(), cleared by done()
        self._closed = False

    def put(self, item: T) -> bool:
        """Store `item`; True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._has_item
            self._item, self._has_item = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> tuple[bool, T | None]:
        """(True, item) once one is there; (False, None) on timeout or after close().

        A taken item counts as in flight until done() is called.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                return False, None
            if self._closed:
                return False, None
            item, self._item, self._has_item = self._item, None, False
            self._in_flight = True
            return True, item

    def done(self) -> None:
        with self._cond:
            self._in_flight = False

    def state(self) -> tuple[bool, bool]:
        """(pending, in_flight), read together."""
        with self._cond:
            return self._has_item, self._in_flight

    def close(self) -> None:
        """Wake every waiter; later take() calls return at once. Drops a waiting item."""
        with self._cond:
            self._closed = True
            self._item, self._has_item = None, False
            self._cond.notify_all()


class FrameWorker(Generic[T]):
    """Runs `handler(item)` on one thread for the newest submitted item.

    `on_error(item, exc)` is called (on the worker thread) when the handler raises; the worker
    keeps running. Exceptions from on_error itself are swallowed so the thread never dies.
    """

    def __init__(
        self,
        handler: Callable[[T], None],
        on_error: Callable[[T, BaseException], None] | None = None,
        name: str = "ovseg-worker",
    ) -> None:
        self._handler = handler
        self._on_error = on_error
        self._slot: LatestSlot[T] = LatestSlot()
        self._lock = threading.Lock()
        self._submitted = self._dropped = self._processed = self._failed = 0
        self._stopping = threading.Event()
        # Not a daemon: at a normal exit we want the frame in flight to finish cleanly rather
        # than be torn down inside native code; stop() bounds how long anyone waits for it.
        self._thread = threading.Thread(target=self._run, name=name, daemon=False)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: T) -> None:
        """Hand over an item; cheap and non-blocking (called from subscription callbacks)."""
        if self._stopping.is_set():
            return
        replaced = self._slot.put(item)
        with self._lock:
            self._submitted += 1
            if replaced:
                self._dropped += 1

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stats(self) -> WorkerStats:
        pending, busy = self._slot.state()
        with self._lock:
            return WorkerStats(self._submitted, self._dropped, self._processed, self._failed,
                               busy, pending)

    def stop(self, timeout: float = 1.5) -> bool:
        """Stop taking items and join the thread; False if a handler call is still running."""
        self._stopping.set()
        self._slot.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is pending or running (for tests and orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.stats()
            if not s.busy and not s.pending:
                return True
            time.sleep(0.005)
        return False

    def _run(self) -> None:
        while not self._stopping.is_set():
            ok, item = self._slot.take(timeout=0.5)
            if not ok:
                continue
            if self._stopping.is_set():
                self._slot.done()
                break
            try:
                self._handler(item)  # type: ignore[arg-type]
            except Exception as exc:  # the worker must survive any bad frame
                with self._lock:
                    self._failed += 1
                if self._on_error is not None:
                    try:
                        self._on_error(item, exc)  # type: ignore[arg-type]
                    except Exception:
                        pass
            else:
                with self._lock:
                    self._processed += 1
            finally:
                self._slot.done()
