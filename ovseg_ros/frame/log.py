"""The one place that reports what happened to frames that produced no output: a per-key
throttle for log lines, and `FrameLog`, which counts refused frames per reason (the bag's
summary, the node's diagnostics) and logs the first of each kind per period."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line, for logs that a robot operator reads."""
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


def kind_of(text: str, length: int = 80) -> str:
    """A log key for a message: digits stripped (sizes and stamps vary frame to frame)."""
    return "".join(c for c in text if not c.isdigit())[:length]


class Throttle:
    """Per-key rate limit for log lines: `ready(key)` is True at most once per period."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def ready(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return False
            if len(self._last) > 1000:  # keys come from messages; never grow without bound
                self._last.clear()
            self._last[key] = now
            return True


class FrameLog:
    """Refused frames, counted per reason and logged once per kind per `period_s`.

    `logger` has `.warning` and `.error` (an rclpy logger or a `logging.Logger`)."""

    def __init__(self, logger: Any, period_s: float = 5.0,
                 throttle: Throttle | None = None) -> None:
        self.logger = logger
        self.throttle = throttle or Throttle(period_s)
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, key: str, text: str) -> None:
        if self.throttle.ready(key):
            self.logger.warning(text)

    def error(self, key: str, text: str) -> None:
        if self.throttle.ready(key):
            self.logger.error(text)

    def refused(self, reason: str, text: str, error: bool = False) -> None:
        """Count one frame under `reason` and log `text` (throttled per reason)."""
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + 1
        (self.error if error else self.warn)(f"refused:{kind_of(reason)}", text)
