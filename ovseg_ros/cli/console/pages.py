"""The connected pages and the frames they get: latest wins, end to end.

Each page watches one camera. The hub keeps only the newest frame per camera; a page's sender
takes it when the page has painted the previous one (the page acknowledges each paint) and
at most `max_fps` times a second. A page that paints slowly therefore skips frames instead of
queueing them, in this process and in the socket, and never slows the node, this console or
the other pages. A frame's packet is encoded once, off the event loop, for all pages.

Everything here runs on the asyncio loop; `Hub.frame_from_thread` is the door for the ROS
spinner thread.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ovseg_ros.cli.console.frames import Frame

ACK_TIMEOUT_S = 5.0  # a page that never acknowledges gets its next frame after this anyway


@dataclass(eq=False)
class Page:
    """One connected page."""

    ws: web.WebSocketResponse
    camera: str | None = None
    overlay: bool = True
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sent: tuple[str, int] | None = None  # (camera, seq) of the frame last sent
    waiting_ack: bool = False
    sent_at: float = 0.0  # when that frame was sent (monotonic)
    ready_at: float = 0.0  # when that frame was complete in this process

    async def send_json(self, message: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self.send_lock:
            try:
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))
            except ConnectionError:
                pass


class Hub:
    """The newest frame per camera, the pages, and what the ROS side must subscribe."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Executor, max_fps: float,
                 demand: Callable[[dict[str, bool]], None]) -> None:
        self.loop, self.pool, self.max_fps = loop, pool, max_fps
        self.demand = demand
        self.pages: set[Page] = set()
        self.latest: dict[str, tuple[Frame, float]] = {}  # camera -> (frame, ready at)
        self._seq = 0
        self._tasks: set[asyncio.Task] = set()  # sends in flight (the loop keeps weak refs)
        self.state: dict[str, Any] = {"found": False, "cameras": [], "vocabulary": None}

    # ---- from the ROS thread ----------------------------------------------------------------

    def event_from_thread(self, kind: str, value: Any) -> None:
        self.loop.call_soon_threadsafe(self._event, kind, value, time.monotonic())

    def _event(self, kind: str, value: Any, at: float) -> None:
        if kind == "frame":
            self._seq += 1
            value.seq = self._seq
            self.latest[value.camera] = (value, at)
            for page in self.pages:
                if page.camera == value.camera:
                    page.wake.set()
            return
        if kind == "cameras":
            self.state.update(value)
            message = {"type": "cameras", **value}
        elif kind == "vocabulary":
            self.state["vocabulary"] = value
            message = {"type": "vocabulary", **value}
        else:  # "problem": a message the pages show
            message = {"type": "problem", "message": str(value)}
        for page in list(self.pages):
            self._spawn(page.send_json(message))

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- pages ------------------------------------------------------------------------------

    def watch(self, page: Page, camera: str, overlay: bool) -> None:
        page.camera, page.overlay, page.sent = camera, overlay, None
        page.waiting_ack = False
        self._update_demand()
        page.wake.set()

    def leave(self, page: Page) -> None:
        self.pages.discard(page)
        page.wake.set()
        self._update_demand()

    def _update_demand(self) -> None:
        demand: dict[str, bool] = {}
        for page in self.pages:
            if page.camera is not None:
                demand[page.camera] = demand.get(page.camera, False) or page.overlay
        for camera in [c for c in self.latest if c not in demand]:
            del self.latest[camera]  # unwatched: no longer updated, so never shown again
        self.demand(demand)

    def acknowledged(self, page: Page, seq: int) -> None:
        """The page painted frame `seq`: its delivery time goes back to it, the next may go."""
        if page.sent is None or page.sent[1] != seq or not page.waiting_ack:
            return
        page.waiting_ack = False
        now = time.monotonic()
        self._spawn(page.send_json({
            "type": "delivery", "seq": seq, "ms": round((now - page.ready_at) * 1e3, 1)}))
        page.wake.set()

    async def sender(self, page: Page) -> None:
        """Send `page` the newest frame of its camera whenever it may take one."""
        last_send = 0.0
        while not page.ws.closed and page in self.pages:
            timeout = ACK_TIMEOUT_S if page.waiting_ack else None
            try:
                await asyncio.wait_for(page.wake.wait(), timeout)
            except asyncio.TimeoutError:
                page.waiting_ack = False  # a lost acknowledgement must not stop the view
            page.wake.clear()
            if page.waiting_ack or page.camera is None:
                continue
            entry = self.latest.get(page.camera)
            if entry is None or page.sent == (page.camera, entry[0].seq):
                continue
            gap = 1.0 / self.max_fps - (time.monotonic() - last_send) if self.max_fps else 0
            if gap > 0:
                await asyncio.sleep(gap)
                entry = self.latest.get(page.camera) or entry  # newer meanwhile: that one
            frame, ready_at = entry
            data = await self.loop.run_in_executor(self.pool, frame.packet, page.overlay)
            async with page.send_lock:
                if page.ws.closed:
                    return
                try:
                    await page.ws.send_bytes(data)
                except ConnectionError:
                    return
            last_send = time.monotonic()
            page.sent, page.waiting_ack = (frame.camera, frame.seq), True
            page.sent_at, page.ready_at = last_send, ready_at
