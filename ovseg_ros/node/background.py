"""Heavy work off the executor: one thread per kind of work, a small bounded queue in front of
it, and pacing that leaves the frames their CPU. ROS-free and torch-free.

A service callback `submit`s a job and awaits its future (node/awaiting.py), so no executor
thread waits while text is encoded or a query is answered; a job that would wait behind more
than `queue_limit()` others is refused at once with `Busy`, whose message says when to call
again. Jobs run in slices (`JobContext.slice`): before each one the worker waits for a gap
between frames (at most `FramesFirst.MAX_WAIT_S`, so it never starves) and, while frames
flow, rests after it so that it takes at most `share()` of the time (counted in the CPU time
the slice used, so time spent waiting for a core or the GIL is not charged).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class Busy(RuntimeError):
    """Refused at once, nothing changed; `retry_after_s`: when a call is likely to succeed."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Cancelled(RuntimeError):
    """The job was dropped (cleanup, shutdown) before it finished; nothing changed."""


# (a frame is in flight or waiting, seconds since the last frame ended), or None: no frames
FrameActivity = Callable[[], "tuple[bool, float] | None"]


class FramesFirst:
    """When background work may run: between frames, and at most `share()` of the wall time
    while frames flow (a frame ended within `FLOWING_S`). Without frames it runs freely."""

    FLOWING_S = 1.0
    MAX_WAIT_S = 0.25  # the longest a slice waits for a gap between frames, by default
    POLL_S = 0.005

    def __init__(self, frames: FrameActivity, share: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic, max_wait_s: float = MAX_WAIT_S):
        """max_wait_s: how long a slice waits for a gap; choose it by the slice's own length
        (a frame that never pauses would otherwise cost every short slice the full wait)."""
        self.frames, self.share, self.clock = frames, share, clock
        self.max_wait_s = max_wait_s
        self._rest_until = 0.0
        self._lock = threading.Lock()

    def flowing(self) -> bool:
        activity = self.frames()
        return activity is not None and (activity[0] or activity[1] < self.FLOWING_S)

    def before_slice(self, cancelled: threading.Event, work_s: float | None = None) -> None:
        """Rest what the last slice owes, then wait for no frame to be in flight, at most
        `max_wait_s` and at most the slice's own expected length `work_s` (waiting longer than
        the work would take saves the frames nothing)."""
        with self._lock:
            rest = self._rest_until - self.clock()
        if rest > 0 and cancelled.wait(rest):
            return
        wait = self.max_wait_s if work_s is None else min(self.max_wait_s, work_s)
        deadline = self.clock() + wait
        while self.clock() < deadline and not cancelled.is_set():
            activity = self.frames()
            if activity is None or not activity[0]:
                return
            cancelled.wait(self.POLL_S)

    def after_slice(self, seconds: float) -> None:
        """`seconds`: the CPU time the slice took (see JobContext.slice)."""
        share = min(max(float(self.share()), 0.01), 1.0)
        if share < 1.0 and self.flowing():
            with self._lock:
                self._rest_until = self.clock() + seconds * (1.0 - share) / share


@dataclass
class _Job:
    fn: Callable[[JobContext], Any]
    size: int
    future: Future
    cancelled: threading.Event


class JobContext:
    """What a running job sees: `slice(units)` around each piece of work."""

    def __init__(self, worker: BackgroundWorker, job: _Job):
        self._worker, self._job = worker, job

    @contextmanager
    def slice(self, units: int = 1) -> Iterator[None]:
        """Paced, timed and cancellable: raises Cancelled before the work when the job was
        dropped. The time from the pacing's wait to the slice's end (rest and waits for
        frame gaps included) feeds the worker's estimate per unit, so retry hints hold."""
        worker, job = self._worker, self._job
        waited = time.monotonic()
        expected = None if worker.work_unit_s is None else worker.work_unit_s * units
        worker.pacing.before_slice(job.cancelled, expected)
        if job.cancelled.is_set() or worker.stopping:
            raise Cancelled(worker.cancel_reason)
        threads = worker.threads(worker.pacing.flowing()) if worker.threads is not None else 1
        t0, cpu0 = time.monotonic(), time.thread_time()
        yield
        end = time.monotonic()
        worker.record(units, end - waited, end - t0)
        # The CPU the slice took (this thread's time, times the threads it ran on, at most
        # the wall time): waiting for the GIL or a core is no CPU taken from the frames.
        worker.pacing.after_slice(min(end - t0, (time.thread_time() - cpu0) * max(threads, 1)))


# A job is not admitted when, by the measured speed, it would wait longer than this before it
# starts: a client's timeout is likely shorter than a long wait (a new phrase behind a
# vocabulary of 250 new names), and a refusal that says when to call again is better.
MAX_WAIT_S = 5.0


class BackgroundWorker:
    """One thread running submitted jobs in order; at most `queue_limit()` wait, none that
    would wait longer than `max_wait_s`.

    unit: what a job's size counts ("new names", "queries"), for the refusal's message.
    threads(flowing): called before each slice (e.g. to set PyTorch's thread count); returns
    the number of threads the slice will run on.
    """

    def __init__(self, name: str, what: str, unit: str, pacing: FramesFirst,
                 queue_limit: Callable[[], int],
                 threads: Callable[[bool], int] | None = None, unit_s: float = 0.1,
                 max_wait_s: float = MAX_WAIT_S):
        self.name, self.what, self.unit = name, what, unit
        self.max_wait_s = max_wait_s
        self.pacing, self.queue_limit, self.threads = pacing, queue_limit, threads
        self.unit_s = unit_s  # running estimate of seconds per unit (retry hints)
        self.work_unit_s: float | None = None  # the same without waits and rests, once measured
        self.cancel_reason = "cancelled"
        self.stopping = False
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: tuple[_Job, float] | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.done = self.refused = 0

    # ---- submitting (any thread) ---------------------------------------------------------

    def submit(self, fn: Callable[[JobContext], T], size: int = 1) -> Future:
        """Queue `fn(context)`; its Future. Raises Busy when `queue_limit()` jobs wait, or
        when the job would wait longer than `max_wait_s` by the measured speed."""
        with self._cond:
            if self.stopping:
                raise Cancelled(self.cancel_reason)
            limit = max(int(self.queue_limit()), 0)
            working = self._running is not None or bool(self._queue)
            wait = self._backlog_s()
            full = len(self._queue) >= limit
            if working and (full or wait > self.max_wait_s):
                self.refused += 1
                units = sum(j.size for j in self._queue)
                running = self._running[0].size if self._running else 0
                why = ("the most it queues" if full else
                       f"about {wait:.1f} s of work, more than the {self.max_wait_s:g} s it "
                       "lets a request wait")
                raise Busy(f"busy: the {self.what} is working on {running} {self.unit}, and "
                           f"{len(self._queue)} request(s) ({units} {self.unit}) wait ({why}); "
                           f"nothing changed: call again in about {wait:.1f} s", wait)
            job = _Job(fn, max(int(size), 1), Future(), threading.Event())
            self._queue.append(job)
            self._ensure_thread()
            self._cond.notify()
        return job.future

    def _backlog_s(self) -> float:
        """Estimated seconds until a new job would start. Call with the condition held."""
        ahead = sum(j.size for j in self._queue) * self.unit_s
        if self._running is not None:
            job, since = self._running
            ahead += max(job.size * self.unit_s - (time.monotonic() - since), 0.0)
        return max(ahead, 0.1)

    def backlog_s(self) -> float:
        with self._cond:
            return self._backlog_s() if (self._running or self._queue) else 0.0

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._running is not None or bool(self._queue)

    def record(self, units: int, seconds: float, work_s: float | None = None) -> None:
        """Fold a measured slice into the estimates per unit: `seconds` from the pacing's wait
        to the slice's end (retry hints, admission), `work_s` the work alone (slice sizes)."""
        n = max(units, 1)
        with self._cond:
            self.unit_s = 0.7 * self.unit_s + 0.3 * seconds / n
            if work_s is not None:
                self.work_unit_s = (work_s / n if self.work_unit_s is None
                                    else 0.7 * self.work_unit_s + 0.3 * work_s / n)

    # ---- dropping and stopping -------------------------------------------------------------

    def cancel(self, reason: str) -> None:
        """Drop the waiting jobs and stop the running one at its next slice (Cancelled)."""
        with self._cond:
            self.cancel_reason = reason
            dropped = list(self._queue)
            self._queue.clear()
            if self._running is not None:
                self._running[0].cancelled.set()
        for job in dropped:
            job.future.set_exception(Cancelled(reason))

    def stop(self, reason: str, timeout: float) -> bool:
        """Cancel everything and end the thread; False when a slice still ran after
        `timeout` (it cannot be interrupted; its result is dropped)."""
        with self._cond:
            self.stopping = True
            self._cond.notify_all()
        self.cancel(reason)
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # ---- the thread ----------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self.stopping:
                    if not self._cond.wait(timeout=5.0) and not self._queue:
                        self._thread = None  # idle: the thread ends, submit starts another
                        return
                if self.stopping:
                    return
                job = self._queue.popleft()
                self._running = (job, time.monotonic())
            try:
                if job.cancelled.is_set():
                    raise Cancelled(self.cancel_reason)
                result = job.fn(JobContext(self, job))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
            finally:
                with self._cond:
                    self._running = None
                    self.done += 1
                # The job's closure may hold a model: not kept alive while the thread idles.
                job = result = None


class RateLimit:
    """A token bucket: at most `rate()` per second, bursts up to one second's worth;
    0 = no limit."""

    def __init__(self, rate: Callable[[], float], clock: Callable[[], float] = time.monotonic):
        self.rate, self.clock = rate, clock
        self._tokens: float | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    def take(self) -> float:
        """0.0 when allowed (a token taken), else seconds until the next token."""
        rate = float(self.rate())
        if rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            burst = max(rate, 1.0)
            if self._tokens is None:
                self._tokens = burst
            self._tokens = min(burst, self._tokens + (now - self._last) * rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / rate
