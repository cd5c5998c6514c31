"""Progress over frames: a bar (frames/s, ETA) on a terminal, one log line per 10% otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int = 0, desc: str = "ovseg bag",
                 bar: bool | None = None) -> None:
        self.total, self.done, self.desc = total, 0, desc
        self.t0 = time.perf_counter()
        self.next_tenth = 1
        self.bar = None
        if bar if bar is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, unit="frame", desc=desc, dynamic_ncols=True)

    def add_total(self, n: int) -> None:
        self.total += n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        tenth = min(10, self.done * 10 // self.total) if self.total else 0
        if tenth >= self.next_tenth:
            self.next_tenth = tenth + 1
            elapsed = time.perf_counter() - self.t0
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            print(f"{self.desc}: {tenth * 10}% ({self.done}/{self.total} frames, "
                  f"{rate:.2f} frames/s, ETA {eta:.0f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
