"""The `ovseg` executable: a Ctrl-C at any moment ends it with one line and exit code 130.

A command that loads the model imports torch and open_clip (seconds) once it runs; a
KeyboardInterrupt during those imports, or while frames are segmented, would otherwise end in a
traceback. Nothing here imports more than the standard library before the interrupt is caught;
sub-commands that handle Ctrl-C themselves (`ovseg bag` finishes its output and returns 130)
still do so.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command ended by Ctrl-C


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from ovseg_ros.cli.main import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("ovseg: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
