"""One worker thread fed by "latest frame wins" slots, one slot per input (camera). ROS-free.

Subscription callbacks only `submit` a message (no decoding, no copies): if the worker is busy
the waiting message of that input is replaced and counted as dropped, so slow inference can
never build a queue and the output always belongs to the newest input. The worker holds at
most one waiting item per input; when it wakes it takes every full slot at once, so several
cameras can share one batched inference (`batch=True`).

Shutdown: `stop()` wakes the worker and joins it with a timeout. A frame already inside the
model cannot be interrupted (PyTorch offers no safe cancellation), so `stop()` returns False
when that frame outlives the timeout; the caller then exits the process without waiting for it
(see runner.run_main).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Key = Hashable  # which input (camera) an item came from; None for a single input


@dataclass(frozen=True)
class WorkerStats:
    """A consistent snapshot of the counters."""

    submitted: int  # items handed to submit()
    dropped: int  # items replaced in their slot before the worker took them
    processed: int  # items whose handler call returned normally
    failed: int  # items whose handler call raised
    busy: bool  # the handler is running right now
    pending: bool  # at least one item waits in a slot
    pending_items: int = 0  # items waiting (never more than one per key)
    dropped_by_key: dict[Key, int] = field(default_factory=dict)


class LatestSlot(Generic[T]):
    """One-item buffers, one per key: `put` replaces what that key holds, `take` waits for one
    item and `take_all` for every waiting item at once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[Key, T] = {}  # insertion order = order the keys filled up
        self._in_flight = False  # set atomically with take(), cleared by done()
        self._closed = False

    def put(self, item: T, key: Key = None) -> bool:
        """Store `item` for `key`; True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = key in self._items
            self._items[key] = item
            self._cond.notify()
            return replaced

    def take_all(self, timeout: float | None = None) -> tuple[bool, list[tuple[Key, T]]]:
        """(True, [(key, item), ...]) once any item is there; (False, []) on timeout or after
        close(). Taken items count as in flight until done() is called."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout):
                return False, []
            if self._closed:
                return False, []
            items, self._items = list(self._items.items()), {}
            self._in_flight = True
            return True, items

    def take(self, timeout: float | None = None) -> tuple[bool, T | None]:
        """take_all() for a single input: (True, item) or (False, None)."""
        ok, items = self.take_all(timeout)
        return (True, items[0][1]) if ok else (False, None)

    def done(self) -> None:
        with self._cond:
            self._in_flight = False

    def state(self) -> tuple[bool, bool]:
        """(pending, in_flight), read together."""
        with self._cond:
            return bool(self._items), self._in_flight

    def pending_items(self) -> int:
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        """Wake every waiter; later take() calls return at once. Drops waiting items."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


class FrameWorker(Generic[T]):
    """Runs the handler on one thread for the newest submitted item of each key.

    batch=False: `handler(item)` once per taken item; batch=True: `handler([(key, item), ...])`
    once for everything taken together. `on_error(item or batch, exc)` is called (on the worker
    thread) when the handler raises; the worker keeps running. Exceptions from on_error itself
    are swallowed so the thread never dies.
    """

    def __init__(
        self,
        handler: Callable[[Any], None],
        on_error: Callable[[Any, BaseException], None] | None = None,
        name: str = "ovseg-worker",
        batch: bool = False,
    ) -> None:
        self._handler = handler
        self._on_error = on_error
        self._batch = batch
        self._slot: LatestSlot[T] = LatestSlot()
        self._lock = threading.Lock()
        self._submitted = self._dropped = self._processed = self._failed = 0
        self._dropped_by_key: dict[Key, int] = {}
        self._stopping = threading.Event()
        self._last_end = -float("inf")  # monotonic time the handler last returned
        # Not a daemon: at a normal exit we want the frame in flight to finish cleanly rather
        # than be torn down inside native code; stop() bounds how long anyone waits for it.
        self._thread = threading.Thread(target=self._run, name=name, daemon=False)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: T, key: Key = None) -> None:
        """Hand over an item; cheap and non-blocking (called from subscription callbacks)."""
        if self._stopping.is_set():
            return
        replaced = self._slot.put(item, key)
        with self._lock:
            self._submitted += 1
            if replaced:
                self._dropped += 1
                self._dropped_by_key[key] = self._dropped_by_key.get(key, 0) + 1

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stats(self) -> WorkerStats:
        pending, busy = self._slot.state()
        waiting = self._slot.pending_items()
        with self._lock:
            return WorkerStats(self._submitted, self._dropped, self._processed, self._failed,
                               busy, pending, waiting, dict(self._dropped_by_key))

    def activity(self) -> tuple[bool, float]:
        """(an item is in flight or waiting, seconds since the handler last returned): what
        background work reads to run between frames (node/background.py)."""
        pending, busy = self._slot.state()
        return pending or busy, time.monotonic() - self._last_end

    def dropped(self, key: Key = None) -> int:
        with self._lock:
            return self._dropped_by_key.get(key, 0)

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

    def _call(self, work: Any, count: int) -> None:
        try:
            self._handler(work)
        except Exception as exc:  # the worker must survive any bad frame
            with self._lock:
                self._failed += count
            if self._on_error is not None:
                try:
                    self._on_error(work, exc)
                except Exception:
                    pass
        else:
            with self._lock:
                self._processed += count

    def _run(self) -> None:
        while not self._stopping.is_set():
            ok, items = self._slot.take_all(timeout=0.5)
            if not ok:
                continue
            try:
                if self._batch:
                    if not self._stopping.is_set():
                        self._call(items, len(items))
                    continue
                for _, item in items:
                    if self._stopping.is_set():
                        break
                    self._call(item, 1)
            finally:
                self._last_end = time.monotonic()
                self._slot.done()
