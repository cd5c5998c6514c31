"""Ctrl-C before the node exists: the first thing an executable does, before heavy imports.

Importing torch, open_clip and rclpy takes seconds. A SIGINT or SIGTERM then would print a
KeyboardInterrupt traceback from deep inside an import and exit -2. Until the runner installs
its own handlers (runner.install_signal_handlers, which replaces these), a signal ends the
process at once with exit code 0, as a signal does later, and prints nothing: nothing has been
started that would need a shutdown. Standard library only, so it costs nothing to import.
"""

from __future__ import annotations

import os
import signal
import sys


def _exit_now(signum: int, frame: object) -> None:
    os._exit(0)


def exit_quietly_on_signals() -> None:
    """SIGINT and SIGTERM end the process with code 0 until the runner takes over. A signal
    the process was started ignoring (SIGINT of a background job) stays ignored, as Python
    itself does for SIGINT."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _exit_now)


def started_as_module() -> bool:
    """True while `python -m ovseg_ros.node.<module>` imports the module's packages: Python
    sets sys.argv[0] to "-m" while it locates the module (documented for -m)."""
    return sys.argv[:1] == ["-m"]
