"""A busy core beside the benchmark: how a frame degrades when other processes share the CPU.

`cpu_hog()` starts one child that spins in pure Python (one core busy, like a camera driver
or another node at full load), bounded by its own deadline, and kills it by its PID on exit.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

# The child's own program: spin until a deadline, so it ends even if this process dies.
_SPIN = ("import sys, time\nend = time.monotonic() + float(sys.argv[1])\n"
         "while time.monotonic() < end: pass\n")


@contextlib.contextmanager
def cpu_hog(limit_s: float = 900.0) -> Iterator[int]:
    """One core kept busy while the block runs; yields the child's PID. The child exits by
    itself after `limit_s` seconds at the latest."""
    child = subprocess.Popen([sys.executable, "-c", _SPIN, f"{float(limit_s):.1f}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # let it reach its loop
        yield child.pid
    finally:
        child.kill()
        child.wait(timeout=10)
