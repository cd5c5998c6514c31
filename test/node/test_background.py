"""Background work off the executor (node/background.py): one worker thread per kind of work,
a bounded queue refused with when to call again, cancellation at slice boundaries, pacing
between frames with a share of the time, and the query rate limit. ROS-free."""

from __future__ import annotations

import threading
import time

import pytest

from ovseg_ros.node.background import (
    BackgroundWorker,
    Busy,
    Cancelled,
    FramesFirst,
    RateLimit,
)
from ovseg_ros.node.heavy_work import all_of


def worker(queue: int = 1, frames=lambda: None, share: float = 1.0, **kw) -> BackgroundWorker:
    return BackgroundWorker("test-worker", "test worker", "item(s)",
                            FramesFirst(frames, lambda: share), lambda: queue, **kw)


def blocked_job(entered: threading.Event, release: threading.Event, result: str = "done"):
    def job(ctx):
        with ctx.slice():
            entered.set()
            assert release.wait(20)
        return result
    return job


def test_jobs_run_in_order_on_one_thread():
    w = worker(queue=8)
    seen: list[tuple[int, str]] = []

    def job(k):
        def run(ctx):
            with ctx.slice():
                seen.append((k, threading.current_thread().name))
            return k
        return run

    futures = [w.submit(job(k)) for k in range(5)]
    assert [f.result(timeout=20) for f in futures] == list(range(5))
    assert [k for k, _ in seen] == list(range(5))
    assert {name for _, name in seen} == {"test-worker"}
    assert w.stop("test over", 5.0)


def test_a_full_queue_refuses_at_once_with_when_to_call_again():
    w = worker(queue=1, unit_s=2.0)
    entered, release = threading.Event(), threading.Event()
    running = w.submit(blocked_job(entered, release), size=1)
    assert entered.wait(20)
    waiting = w.submit(lambda ctx: "second", size=3)
    with pytest.raises(Busy) as refused:
        w.submit(lambda ctx: "third")
    assert not running.done()  # refused at once: the running job cannot end before release
    message = str(refused.value)
    assert message.startswith("busy: the test worker is working on 1 item(s), and 1 request(s) "
                              "(3 item(s)) wait") and "nothing changed" in message
    # about 3 items * 2 s waiting plus what is left of the running one (2 s)
    assert 6.0 <= refused.value.retry_after_s <= 8.5 and "call again in about" in message
    release.set()
    assert running.result(timeout=20) == "done" and waiting.result(timeout=20) == "second"
    assert w.submit(lambda ctx: "after").result(timeout=20) == "after"  # room again
    assert w.refused == 1
    w.stop("test over", 5.0)


def test_a_long_wait_is_refused_even_with_room_in_the_queue():
    w = worker(queue=8, unit_s=10.0, max_wait_s=5.0)  # one item is estimated at 10 s
    entered, release = threading.Event(), threading.Event()
    running = w.submit(blocked_job(entered, release))
    assert entered.wait(20)
    with pytest.raises(Busy, match="call again in about"):
        w.submit(lambda ctx: None)
    release.set()
    running.result(timeout=20)
    w.stop("test over", 5.0)


def test_cancel_drops_waiting_jobs_and_stops_the_running_one_at_its_next_slice():
    w = worker(queue=4)
    entered, release = threading.Event(), threading.Event()
    slices = []

    def long_job(ctx):
        for k in range(100):
            with ctx.slice():
                slices.append(k)
                if k == 0:
                    entered.set()
                    assert release.wait(20)
        return "finished"

    running = w.submit(long_job)
    assert entered.wait(20)
    waiting = w.submit(lambda ctx: "never")
    w.cancel("the node is cleaning up")
    release.set()
    with pytest.raises(Cancelled, match="cleaning up"):
        waiting.result(timeout=20)
    with pytest.raises(Cancelled, match="cleaning up"):
        running.result(timeout=20)
    assert slices == [0]  # the slice under way ended; no further slice began
    assert w.stop("test over", 5.0)
    with pytest.raises(Cancelled):
        w.submit(lambda ctx: None)


def test_a_failing_job_reaches_its_caller_and_the_worker_goes_on():
    w = worker(queue=2)

    def bad(ctx):
        raise ValueError("the text encoder failed")

    with pytest.raises(ValueError, match="failed"):
        w.submit(bad).result(timeout=20)
    assert w.submit(lambda ctx: 7).result(timeout=20) == 7
    w.stop("test over", 5.0)


class FakeFrames:
    """A frame worker's activity, set by the test."""

    def __init__(self) -> None:
        self.in_flight, self.ended = False, time.monotonic()

    def __call__(self):
        return self.in_flight, time.monotonic() - self.ended


def test_slices_wait_for_a_gap_between_frames_but_never_long():
    frames = FakeFrames()
    never = threading.Event()
    frames.in_flight = True
    now = [0.0]

    def polled() -> float:  # every look at the clock: one poll later
        now[0] += FramesFirst.POLL_S
        return now[0]

    # A frame that never ends: the slice goes ahead once MAX_WAIT_S of polling has passed.
    FramesFirst(frames, lambda: 1.0, clock=polled).before_slice(never)
    assert FramesFirst.MAX_WAIT_S <= now[0] <= FramesFirst.MAX_WAIT_S + 3 * FramesFirst.POLL_S
    # A clock that stands still never reaches that bound: the slice starts when the frame ends.
    stopped = FramesFirst(frames, lambda: 1.0, clock=lambda: 0.0)
    waiting = threading.Thread(target=stopped.before_slice, args=(never,), daemon=True)
    waiting.start()
    assert waiting.is_alive()
    frames.in_flight = False
    waiting.join(20)
    assert not waiting.is_alive()
    assert FramesFirst(lambda: None, lambda: 1.0).flowing() is False  # no frame worker


def test_while_frames_flow_a_slice_is_followed_by_rest_for_its_share():
    frames = FakeFrames()
    now = [100.0]
    pacing = FramesFirst(frames, lambda: 0.25, clock=lambda: now[0])
    pacing.after_slice(0.3)  # frames flow (one ended just now): rest 0.3 * 0.75 / 0.25 = 0.9 s
    assert pacing._rest_until == pytest.approx(100.9)
    frames.ended = time.monotonic() - 10.0  # no frame for 10 s: nothing to leave room for
    pacing.after_slice(0.3)
    assert pacing._rest_until == pytest.approx(100.9)  # unchanged: no new rest
    frames.ended = time.monotonic()
    half = FramesFirst(frames, lambda: 0.5, clock=lambda: now[0])
    half.after_slice(0.2)
    rests = Recording()
    half.before_slice(rests)  # no frame in flight: it only rests
    assert rests.waits == [pytest.approx(0.2)]  # as long as the slice, for a share of 0.5


class Recording(threading.Event):
    """A cancellation event that records how long it is asked to wait, and waits not at all."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


def test_rate_limit_admits_the_rate_with_a_one_second_burst():
    now = [0.0]
    limit = RateLimit(lambda: 4.0, clock=lambda: now[0])
    assert [limit.take() for _ in range(4)] == [0.0] * 4  # the burst
    wait = limit.take()
    assert wait == pytest.approx(0.25)
    now[0] += 0.25
    assert limit.take() == 0.0 and limit.take() > 0
    unlimited = RateLimit(lambda: 0.0)
    assert all(unlimited.take() == 0.0 for _ in range(1000))


def test_all_of_waits_for_every_future():
    from concurrent.futures import Future

    a, b = Future(), Future()
    both = all_of({a, b})
    a.set_result("x")
    assert not both.done()
    b.set_exception(Cancelled("gone"))
    with pytest.raises(Cancelled):
        both.result(timeout=5)
