"""The node's worker: one thread, a one-slot latest-frame buffer, drop counts, clean stop."""

from __future__ import annotations

import threading
import time

from ovseg_ros.node.worker import FrameWorker, LatestSlot


def test_slot_keeps_only_the_latest_item():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True  # 1 was never taken: a dropped frame
    assert slot.take(0.1) == (True, 2)
    assert slot.take(0.05) == (False, None)
    assert slot.state() == (False, True)  # taken, in flight until done()
    slot.done()
    assert slot.state() == (False, False)


def test_slot_close_wakes_a_waiting_taker():
    slot: LatestSlot[int] = LatestSlot()
    out = []
    t = threading.Thread(target=lambda: out.append(slot.take(10.0)))
    t.start()
    time.sleep(0.05)
    slot.close()
    t.join(2.0)
    assert not t.is_alive() and out == [(False, None)]


def test_busy_worker_drops_old_items_and_processes_the_newest():
    release = threading.Event()
    seen: list[int] = []

    def handler(item: int) -> None:
        seen.append(item)
        if item == 0:
            release.wait(5.0)  # the first item blocks the worker like a slow inference

    w: FrameWorker[int] = FrameWorker(handler)
    w.start()
    try:
        w.submit(0)
        assert _wait(lambda: w.stats().busy)
        for i in range(1, 101):  # a burst while busy: only the last can survive
            w.submit(i)
        s = w.stats()
        assert s.pending and s.dropped == 99 and s.submitted == 101
        release.set()
        assert w.wait_idle(5.0)
        assert seen == [0, 100]
        s = w.stats()
        assert (s.processed, s.dropped, s.failed, s.pending, s.busy) == (2, 99, 0, False, False)
    finally:
        release.set()
        assert w.stop(2.0)


def test_handler_exceptions_are_reported_and_the_worker_survives():
    errors: list[tuple[int, str]] = []

    def handler(item: int) -> None:
        if item % 2:
            raise RuntimeError(f"bad frame {item}")

    w: FrameWorker[int] = FrameWorker(handler, on_error=lambda i, e: errors.append((i, str(e))))
    w.start()
    try:
        for i in range(4):
            w.submit(i)
            assert w.wait_idle(5.0)
        s = w.stats()
        assert (s.processed, s.failed) == (2, 2)
        assert errors == [(1, "bad frame 1"), (3, "bad frame 3")]
    finally:
        assert w.stop(2.0)


def test_stop_is_prompt_when_idle_and_bounded_when_a_frame_is_stuck():
    slot: LatestSlot[int] = LatestSlot()
    taking = threading.Thread(target=slot.take_all, daemon=True)  # waits without a timeout
    taking.start()
    time.sleep(0.05)  # most likely waiting by now (returning at once after close is fine too)
    slot.close()
    taking.join(20)
    assert not taking.is_alive()  # the waiting take is woken, not polled out
    w: FrameWorker[int] = FrameWorker(lambda i: None)
    w.start()
    assert w.stop(2.0) is True

    gate = threading.Event()
    stuck: FrameWorker[int] = FrameWorker(lambda i: gate.wait(30.0))
    stuck.start()
    stuck.submit(1)
    assert _wait(lambda: stuck.stats().busy)
    assert stuck.stop(0.3) is False  # inference cannot be interrupted: report it, don't hang
    assert not gate.is_set()  # returned while the handler was still stuck
    stuck.submit(2)  # ignored after stop
    assert stuck.stats().submitted == 1
    gate.set()
    assert stuck.stop(2.0) is True


def _wait(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
