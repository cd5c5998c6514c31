"""The node's heavy work, off its executor: text encoding on one worker thread, query answers
on another, both behind small bounded queues and paced so frames keep their CPU
(background.FramesFirst). ROS-free; the services await the futures (awaiting.wait_for).

- Text: new class names (~/set_prompts, the `prompts` parameter) and new phrases (~/query,
  ~/encode_text) are encoded in slices of about `SLICE_S`, on `background_threads` PyTorch
  threads while frames flow (all cores otherwise). Names already on disk (core.text_store) are
  read, never queued. At most `text_queue` requests wait; more are refused (background.Busy).
- Queries: at most `query_rate_hz` per second are admitted, at most `query_queue` wait.
- ~/set_prompts: at most `set_prompts_rate_hz` calls per second are admitted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import torch

from ovseg_ros.node.background import (
    BackgroundWorker,
    Busy,
    FrameActivity,
    FramesFirst,
    JobContext,
    RateLimit,
)

SLICE_S = 0.25  # target length of one encoding slice (one name is longer on some machines)
MAX_CHUNK = 64  # names per slice at most
# The first estimate of one name's encoding (retry hints, admission) until one is measured:
# ViT-B-16's text tower on a few CPU cores.
TEXT_S_PER_NAME = 0.5
QUERY_WAIT_S = 0.03  # the longest a query's answer waits for a gap between frames


class HeavyWork:
    """Owns the pacing, the text and query workers, and the query rate limit of one node.

    values: the node's current parameter values (read at each use: the settings are dynamic).
    frames: the frame worker's activity (see background.FrameActivity).
    """

    def __init__(self, values: Mapping[str, Any], frames: FrameActivity):
        self.values = values
        share = lambda: values["background_share"]  # noqa: E731
        self._default_threads = torch.get_num_threads()
        # Each worker keeps its own share: a query is not held up by the text's rest.
        self.text = BackgroundWorker("ovseg-text", "text encoder", "new name(s)",
                                     FramesFirst(frames, share), lambda: values["text_queue"],
                                     self._threads, unit_s=TEXT_S_PER_NAME)
        # A query's slice is short (milliseconds): it waits for a frame gap only briefly.
        self.queries = BackgroundWorker("ovseg-query", "query worker", "query(ies)",
                                        FramesFirst(frames, share, max_wait_s=QUERY_WAIT_S),
                                        lambda: values["query_queue"], self._threads,
                                        unit_s=0.02)
        self.rate = RateLimit(lambda: values["query_rate_hz"])
        self.prompts_rate = RateLimit(lambda: values["set_prompts_rate_hz"])
        self.prompts_refused = 0
        self._in_flight: dict[str, Future] = {}  # name -> the job encoding it
        self._lock = threading.Lock()

    def _threads(self, flowing: bool) -> int:
        """Set PyTorch's thread count for the calling worker thread (it is per thread)."""
        want = (int(self.values["background_threads"]) if flowing else 0) or \
            self._default_threads
        if torch.get_num_threads() != want:
            torch.set_num_threads(want)
        return want

    # ---- text ------------------------------------------------------------------------------

    def encode_prompts(self, pipeline: Any, prompts: Sequence[str],
                       admit: Callable[[], None] | None = None) -> Future | None:
        """Validate a vocabulary (VocabularyError), call `admit()` (which may raise Busy), and
        start encoding its names that neither memory nor the disk store holds (both the
        segmentation and the CLIP-DIY text); None when there are none. The future's result
        says what was encoded and how long it took. Raises Busy when the text queue is
        full."""
        missing = pipeline.text_to_encode(prompts)
        if admit is not None:
            admit()
        if not missing:
            return None
        return self._submit_text(missing, pipeline.encode_text)

    def encode_phrases(self, segmenter: Any, phrases: Sequence[str]) -> Future | None:
        """Start encoding validated phrases (queries, ~/encode_text) that are not held yet; None
        when all are. Raises Busy when the text queue is full."""
        missing = segmenter.text_cache.load(list(phrases))
        if not missing:
            return None
        return self._submit_text(missing, segmenter.text_cache.embed)

    def _submit_text(self, names: list[str], encode: Callable[[list[str]], Any]) -> Future:
        """One job for the names nobody encodes yet; a future that completes when every name
        of `names` is encoded (several clients asking one new phrase share its encoding)."""
        with self._lock:
            shared = {self._in_flight[n] for n in names if n in self._in_flight}
            names = [n for n in names if n not in self._in_flight]
            if names:
                own = self._submit_job(names, encode)  # Busy: nothing recorded
                for n in names:
                    self._in_flight[n] = own
                own.add_done_callback(lambda _, done=tuple(names): self._finished(done))
                shared.add(own)
        return shared.pop() if len(shared) == 1 else all_of(shared)

    def _finished(self, names: tuple[str, ...]) -> None:
        with self._lock:
            for n in names:
                self._in_flight.pop(n, None)

    def _submit_job(self, names: list[str], encode: Callable[[list[str]], Any]) -> Future:
        def job(ctx: JobContext) -> str:
            t0, todo = time.monotonic(), list(names)
            while todo:
                per_name = max(self.text.work_unit_s or self.text.unit_s, 1e-4)
                size = min(max(int(SLICE_S / per_name), 1), MAX_CHUNK)
                chunk, todo = todo[:size], todo[size:]
                with ctx.slice(len(chunk)):
                    encode(chunk)
            return f"encoded {len(names)} new name(s) in {time.monotonic() - t0:.2f} s"

        return self.text.submit(job, size=len(names))

    def encode_for_parameter(self, pipeline: Any, prompts: list[str], wait_s: float
                             ) -> str | None:
        """For a `prompts` parameter change: start encoding its new names and wait at most
        `wait_s` (parameter callbacks are synchronous). The reason to refuse the change, or
        None to go on (also for prompts the vocabulary refuses: the change is judged later).
        A refused change leaves the encoding running, so setting it again then succeeds."""
        try:
            job = self.encode_prompts(pipeline, prompts)
        except Busy as exc:
            return str(exc)
        except Exception:  # refused prompts (or a limit changed with them): judged later
            return None
        if job is None:
            return None
        try:
            job.result(timeout=wait_s)
        except FutureTimeout:
            return (f"encoding the new names in the background (about "
                    f"{self.text.backlog_s():.1f} s left); nothing changed: set prompts again "
                    "then (the names will be cached), or call ~/set_prompts, which answers "
                    "when the encoding is done")
        except Exception as exc:  # Cancelled, the text encoder failing
            return str(exc)
        return None

    # ---- queries ---------------------------------------------------------------------------

    def admit_query(self) -> None:
        """Raise Busy when the query rate limit is reached (checked before any work)."""
        wait = self.rate.take()
        if wait > 0:
            self.queries.refused += 1
            raise Busy(f"busy: more than query_rate_hz={self.values['query_rate_hz']:g} "
                       f"queries per second (nothing answered); call again in about "
                       f"{wait:.2f} s", wait)

    def admit_prompts(self) -> None:
        """Raise Busy when the ~/set_prompts rate limit is reached (before any work)."""
        wait = self.prompts_rate.take()
        if wait > 0:
            self.prompts_refused += 1
            raise Busy(f"busy: more than set_prompts_rate_hz="
                       f"{self.values['set_prompts_rate_hz']:g} calls per second (nothing "
                       f"changed); call again in about {wait:.2f} s", wait)

    def answer(self, fn: Callable[[], Any]) -> Future:
        """Run `fn()` (one query's answer) on the query worker, in one paced slice."""
        def job(ctx: JobContext) -> Any:
            with ctx.slice(1):
                return fn()

        return self.queries.submit(job)

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.text.busy or self.queries.busy

    def cancel(self, reason: str) -> None:
        """Drop waiting work and stop running work at its next slice (cleanup)."""
        self.text.cancel(reason)
        self.queries.cancel(reason)

    def stop(self, timeout: float) -> bool:
        """End both workers (shutdown); False when a slice still ran after `timeout`."""
        why = "the node is shutting down"
        text = self.text.stop(why, timeout)
        return self.queries.stop(why, max(timeout / 2, 0.1)) and text

    def status(self) -> list[tuple[str, str]]:
        """Key/values for /diagnostics."""
        return [("text_encoder_busy", str(self.text.busy)),
                ("text_encoder_s_per_name", f"{self.text.unit_s:.3f}"),
                ("text_requests_refused", str(self.text.refused)),
                ("set_prompts_refused", str(self.prompts_refused)),
                ("queries_refused", str(self.queries.refused)),
                ("queries_answered", str(self.queries.done))]


def all_of(futures: set[Future]) -> Future:
    """A future done when all of `futures` are: the first one's result, or the first
    exception among them."""
    out: Future = Future()
    pending = list(futures)
    left = [len(pending)]
    lock = threading.Lock()

    def one_done(_: Future) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        errors = [f.exception() for f in pending if f.exception() is not None]
        if errors:
            out.set_exception(errors[0])
        else:
            out.set_result(pending[0].result())

    for f in pending:
        f.add_done_callback(one_done)
    return out
