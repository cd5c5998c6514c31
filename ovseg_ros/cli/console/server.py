"""The console's web server (aiohttp): the page and its assets, the frame WebSocket and the
JSON API the page calls, each API call one service call to the node.

    GET  /                 the page (static/index.html); /static/<asset> its script and style
    GET  /ws               WebSocket: frames and events out; `watch` and `ack` in
    GET  /api/state        the node, its cameras and vocabulary as the console knows them
    GET  /api/prompts      ~/get_prompts
    POST /api/prompts      {"prompts": [names]} -> ~/set_prompts
    POST /api/query        {"phrase", "camera", "threshold"} -> ~/query (one phrase)
    POST /api/pixel        {"camera", "u", "v"} -> ~/pixel_classes

Every answer is JSON with `ok` and, when not ok, the node's own `message` (a refusal, a busy
answer with when to call again); the console never retries for the page. At most
`MAX_IN_FLIGHT` calls per service wait for the node at once; more are refused at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from ovseg_ros.cli.console.frames import quantise
from ovseg_ros.cli.console.link import LinkError, NodeLink, float_array
from ovseg_ros.cli.console.pages import Hub, Page
from ovseg_ros.cli.console.security import MAX_BODY, Access

SCRIPTS = ("console", "common", "frames", "query", "boxes")
ASSETS = {"index.html": "text/html", "console.css": "text/css",
          **{f"{name}.js": "text/javascript" for name in SCRIPTS}}
MAX_WS_MESSAGE = 4096  # a page sends only small JSON messages
MAX_IN_FLIGHT = 4
MAX_NAMES = 1024
MAX_TEXT = 2000  # characters of one name or phrase (the node has its own, tighter rules)
TIMEOUTS = {"set_prompts": 60.0, "get_prompts": 10.0, "query": 30.0, "pixel_classes": 10.0}


class BadRequest(ValueError):
    pass


def asset(name: str) -> bytes:
    return (resources.files("ovseg_ros.cli.console") / "static" / name).read_bytes()


def text_field(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadRequest(f"{key!r} must be a string of at most {MAX_TEXT} characters")
    return value


class Console:
    """The web side of one console: its app, the hub of pages and the link to the node."""

    def __init__(self, link: NodeLink, access: Access, max_fps: float) -> None:
        self.link, self.access, self.max_fps = link, access, max_fps
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ovseg-console-enc")
        self.hub: Hub | None = None
        self._in_flight: dict[str, int] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.access.middleware()])
        app.router.add_get("/", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/prompts", self.get_prompts)
        app.router.add_post("/api/prompts", self.set_prompts)
        app.router.add_post("/api/query", self.query)
        app.router.add_post("/api/pixel", self.pixel)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _start(self, app: web.Application) -> None:
        self.hub = Hub(asyncio.get_running_loop(), self.pool, self.max_fps, self.link.watch)
        self.link.events = self.hub.event_from_thread
        self.link.start()

    async def _stop(self, app: web.Application) -> None:
        for page in list(self.hub.pages):
            await page.ws.close()

    async def _cleanup(self, app: web.Application) -> None:
        self.link.close()
        self.pool.shutdown(wait=False)

    # ---- the page ---------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=asset("index.html"), content_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name == "index.html":
            raise web.HTTPNotFound()
        return web.Response(body=asset(name), content_type=ASSETS[name],
                            headers={"Cache-Control": "no-cache"})

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "node": self.link.node_name, **self.hub.state})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, heartbeat=20.0)
        await ws.prepare(request)
        page = Page(ws)
        self.hub.pages.add(page)
        sender = asyncio.get_running_loop().create_task(self.hub.sender(page))
        await page.send_json({"type": "hello", "node": self.link.node_name,
                              "max_fps": self.max_fps, **self.hub.state})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                    kind = data.get("type")
                    if kind == "watch":
                        self.hub.watch(page, text_field(data, "camera", ""),
                                       data.get("view") == "overlay")
                    elif kind == "ack" and isinstance(data.get("seq"), int):
                        self.hub.acknowledged(page, data["seq"])
                except (ValueError, AttributeError):  # BadRequest, JSON: ignore the message
                    continue
        finally:
            self.hub.leave(page)
            sender.cancel()
        return ws

    # ---- the API ----------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    async def _call(self, relative: str, req: Any) -> Any:
        count = self._in_flight.get(relative, 0)
        if count >= MAX_IN_FLIGHT:
            raise LinkError(f"busy: the console already waits for {count} answers of "
                            f"~/{relative}; try again when one is back")
        self._in_flight[relative] = count + 1
        try:
            return await self.link.call(relative, req, TIMEOUTS[relative])
        finally:
            self._in_flight[relative] -= 1

    async def _answer(self, request: web.Request, work) -> web.Response:
        try:
            body = await self._body(request) if request.method == "POST" else {}
            return web.json_response(await work(body))
        except BadRequest as exc:
            return web.json_response({"ok": False, "message": str(exc)}, status=400)
        except LinkError as exc:
            return web.json_response({"ok": False, "message": str(exc)}, status=503)

    async def get_prompts(self, request: web.Request) -> web.Response:
        from ovseg_ros.srv import GetPrompts

        async def work(body: dict[str, Any]) -> dict[str, Any]:
            res = await self._call("get_prompts", GetPrompts.Request())
            return {"ok": True, "names": list(res.class_names),
                    "ids": [int(i) for i in res.class_ids], "background": bool(res.background)}

        return await self._answer(request, work)

    async def set_prompts(self, request: web.Request) -> web.Response:
        from ovseg_ros.srv import SetPrompts

        async def work(body: dict[str, Any]) -> dict[str, Any]:
            names = body.get("prompts")
            if not isinstance(names, list) or len(names) > MAX_NAMES:
                raise BadRequest(f"'prompts' must be a list of at most {MAX_NAMES} names")
            if not all(isinstance(n, str) and len(n) <= MAX_TEXT for n in names):
                raise BadRequest(f"every name must be a string of at most {MAX_TEXT} "
                                 "characters")
            res = await self._call("set_prompts", SetPrompts.Request(prompts=names))
            return {"ok": bool(res.success), "message": res.message,
                    "names": list(res.class_names), "ids": [int(i) for i in res.class_ids]}

        return await self._answer(request, work)

    async def query(self, request: web.Request) -> web.Response:
        from ovseg_ros.srv import Query

        async def work(body: dict[str, Any]) -> dict[str, Any]:
            phrase = text_field(body, "phrase")
            camera = text_field(body, "camera", "")
            threshold = body.get("threshold", 0.0)
            if not isinstance(threshold, (int, float)) or not (
                    math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
                raise BadRequest("'threshold' must be a number in [0, 1] (0: the node's 0.5)")
            res = await self._call("query", Query.Request(
                phrases=[phrase], camera=camera, threshold=float(threshold)))
            if not res.success:
                return {"ok": False, "message": res.message}
            a = res.answers[0]
            heat = await asyncio.get_running_loop().run_in_executor(
                self.pool, lambda: quantise(float_array(a.relevance)))
            return {"ok": True, "camera": res.camera, "phrase": a.phrase,
                    "in_vocabulary": bool(a.in_vocabulary), "class_id": int(a.class_id),
                    "score": float(a.score), "u": int(a.u), "v": int(a.v),
                    "stamp": {"sec": res.header.stamp.sec, "nanosec": res.header.stamp.nanosec},
                    "width": int(a.relevance.width), "height": int(a.relevance.height),
                    "relevance": base64.b64encode(heat).decode()}

        return await self._answer(request, work)

    async def pixel(self, request: web.Request) -> web.Response:
        from ovseg_ros.srv import PixelClasses

        async def work(body: dict[str, Any]) -> dict[str, Any]:
            camera = text_field(body, "camera", "")
            u, v = body.get("u"), body.get("v")
            if not all(isinstance(x, int) and 0 <= x < 2**31 for x in (u, v)):
                raise BadRequest("'u' and 'v' must be pixel coordinates (integers >= 0)")
            res = await self._call("pixel_classes", PixelClasses.Request(
                camera=camera, u=u, v=v, count=5))
            if not res.success:
                return {"ok": False, "message": res.message}
            return {"ok": True, "camera": res.camera, "u": u, "v": v,
                    "stamp": {"sec": res.header.stamp.sec, "nanosec": res.header.stamp.nanosec},
                    "class_id": int(res.class_id), "class_name": res.class_name,
                    "confidence": float(res.confidence), "note": res.message,
                    "ranked": [{"id": int(i), "name": n, "probability": float(p)}
                               for i, n, p in zip(res.class_ids, res.class_names,
                                                  res.probabilities, strict=True)]}

        return await self._answer(request, work)
