"""`ovseg console`: the command, its options and the server's life.

    ovseg console                         http://127.0.0.1:8765/ for the node /ovseg
    ovseg console --node /robot1/ovseg --port 8800
    ovseg console --host 0.0.0.0          beyond loopback: a token is printed once

Only argparse is imported here at import time: the other `ovseg` commands stay light, and
rclpy and aiohttp are needed only when the console runs. Arguments after `--ros-args` (which
`ros2 launch` appends) are dropped by `ovseg` itself (cli/main.py).
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_PORT = 8765
TOKEN_ENV = "OVSEG_CONSOLE_TOKEN"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("console", help="serve a browser page to watch and steer a running "
                       "node (live view, vocabulary, pixel classes, phrase queries)",
                       description="Serve a browser page on a running node: its live view, "
                       "the legend, a vocabulary editor, a pixel's classes and phrase queries.",
                       epilog="example: ovseg console   (then open http://127.0.0.1:8765/)")
    p.add_argument("--node", default="/ovseg", help="the node's name (default /ovseg; with a "
                   "namespace /robot1/ovseg)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only); any "
                   "other address requires a token for every request")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--token", default=None,
                   help=f"the token beyond loopback (default: ${TOKEN_ENV}, else a random one, "
                   "printed once at start)")
    p.add_argument("--max-fps", type=float, default=15.0,
                   help="most frames per second sent to each page (default 15; 0: the node's "
                   "rate)")
    p.add_argument("--nice", type=int, default=10,
                   help="lower this process's CPU priority by this much (default 10: the "
                   "node's frames come first; 0: keep it)")
    p.set_defaults(client_run=run_console)


def run_console(args: argparse.Namespace) -> int:
    from ovseg_ros.cli.node_session import RosMissing, node_path

    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("ovseg: the console needs aiohttp: pip install aiohttp (requirements.txt)",
              file=sys.stderr)
        return 1
    from ovseg_ros.cli.console.security import Access, ConsoleConfigError

    if not (0 <= args.port <= 65535) or args.max_fps < 0:
        raise ValueError("--port must be 0..65535 and --max-fps >= 0")
    node_path(args.node)  # a bad name fails here, before anything starts
    if not 0 <= args.nice <= 19:
        raise ValueError("--nice must be 0..19")
    if args.nice:  # a viewer yields the CPU to the node it watches (and to everything else)
        os.nice(args.nice)
    try:
        access = Access.for_address(args.host, args.port,
                                    args.token or os.environ.get(TOKEN_ENV) or None)
        try:
            import rclpy  # noqa: F401

            from ovseg_ros.srv import PixelClasses  # noqa: F401
        except ImportError as exc:
            raise RosMissing(f"the console talks to a running node over ROS 2 and needs rclpy "
                             f"and this package's interfaces ({exc}): source scripts/env.sh, "
                             "or a ROS 2 install") from None
        import asyncio

        asyncio.run(serve(args.node, access, args.max_fps))
    except ConsoleConfigError as exc:
        print(f"ovseg: error: {exc}", file=sys.stderr)
        return 2
    return 0


async def serve(node: str, access, max_fps: float) -> None:
    """Serve until SIGINT or SIGTERM; prints the address to open once it listens."""
    import asyncio
    import signal

    from aiohttp import web

    from ovseg_ros.cli.console.link import NodeLink
    from ovseg_ros.cli.console.security import ConsoleConfigError
    from ovseg_ros.cli.console.server import Console

    console = Console(NodeLink(node, lambda kind, value: None), access, max_fps)
    runner = web.AppRunner(console.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, access.host, access.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConsoleConfigError(f"cannot listen on {access.host}:{access.port}: "
                                 f"{exc.strerror or exc}; choose another --port") from None
    access.port = runner.addresses[0][1]
    print(f"ovseg console: {access.token_url()} (node {console.link.node_name}; Ctrl-C "
          "stops it)", flush=True)
    if access.token:
        print("ovseg console: the token is needed by every request; keep the address private",
              flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
