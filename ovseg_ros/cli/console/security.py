"""Who may use the console: safe by default.

- On a loopback address (the default, 127.0.0.1) no token is needed, but the Host header must
  name a loopback address with our port, so a web page that re-points its own domain name at
  127.0.0.1 (DNS rebinding) is refused.
- Beyond loopback a token is required for every request: printed once at start (`token_url`);
  the page's first visit with ?token= stores it in a cookie (HttpOnly, SameSite=Strict) and
  reloads without it; scripts send `Authorization: token <token>`.
- Every state-changing request (POST, and the WebSocket upgrade) must carry an Origin equal to
  the console's own (scheme://Host); POST bodies must be JSON, which a cross-site form cannot
  send without a preflight we never grant.
- Bodies are limited (`MAX_BODY`), and every response forbids framing, sniffing, referrers
  and any script, style or connection that is not ours (Content-Security-Policy).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

COOKIE = "ovseg_console_token"
MAX_BODY = 64 * 1024  # bytes of one request body (a vocabulary of hundreds of names fits)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' blob: data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class ConsoleConfigError(ValueError):
    """The console cannot start with these options; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


@dataclass
class Access:
    """The rules for one console: its address and, beyond loopback, its token. `port` is the
    bound one (the server sets it when asked for port 0)."""

    host: str
    port: int
    token: str | None  # None: loopback, no token

    @classmethod
    def for_address(cls, host: str, port: int, token: str | None) -> Access:
        """Loopback: no token unless one is given. Beyond: the given token or a new one."""
        if token is not None and len(token) < 16:
            raise ConsoleConfigError("--token: use at least 16 characters (or leave it out "
                                     "for a random one)")
        if is_loopback(host):
            return cls(host, port, token)
        return cls(host, port, token or secrets.token_urlsafe(24))

    def url(self, shown_host: str | None = None) -> str:
        host = shown_host or self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def token_url(self) -> str:
        """What to open: the URL with the token, when one is needed."""
        return self.url() + (f"?token={self.token}" if self.token else "")

    # ---- checks ------------------------------------------------------------------------------

    def host_allowed(self, host_header: str) -> bool:
        """The Host header names us. Loopback: a loopback name with our port; beyond
        loopback the token guards every request, and the name may be any of the machine's."""
        if not host_header:
            return False
        parsed = urlsplit(f"//{host_header}")
        try:
            port = parsed.port or 80
        except ValueError:
            return False
        if port != self.port:
            return False
        return bool(self.token) or is_loopback(parsed.hostname or "")

    def token_of(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        for scheme in ("token ", "Bearer "):
            if auth.startswith(scheme):
                return auth[len(scheme):].strip()
        return request.query.get("token") or request.cookies.get(COOKIE, "")

    def token_ok(self, request: web.Request) -> bool:
        if not self.token:
            return True
        given = self.token_of(request)
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    @staticmethod
    def origin_ok(request: web.Request) -> bool:
        """Origin equals this console's own origin (the Host the request was sent to)."""
        origin = request.headers.get("Origin", "")
        return bool(origin) and origin == f"{request.scheme}://{request.host}"

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def check(request: web.Request, handler) -> web.StreamResponse:
            response = await self._check(request, handler)
            for k, v in HEADERS.items():
                response.headers.setdefault(k, v)
            return response

        return check

    async def _check(self, request: web.Request, handler) -> web.StreamResponse:
        if not self.host_allowed(request.headers.get("Host", "")):
            return refuse(421, "this console answers only to its own address (Host "
                               f"{self.url()}); a page that points another name at it is "
                               "refused")
        if not self.token_ok(request):
            return refuse(403, "this console needs its token: open the URL it printed at start "
                               "(http://HOST:PORT/?token=...)")
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if request.method not in SAFE_METHODS or upgrade:
            if not self.origin_ok(request):
                return refuse(403, "refused: a state-changing request must come from the "
                                   "console's own page (Origin header)")
            if request.method == "POST" and request.content_type != "application/json":
                return refuse(415, "send JSON (Content-Type: application/json)")
        if self.token and request.method == "GET" and "token" in request.query \
                and request.path == "/":
            # The token leaves the address bar and the history.
            response = web.Response(status=303, headers={"Location": "/"})
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
            return response
        return await handler(request)


def refuse(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "message": message}, status=status)
