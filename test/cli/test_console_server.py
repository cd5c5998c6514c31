"""`ovseg console` as a process, over plain HTTP and WebSocket on 127.0.0.1 (no node, no
browser): its safety rules (Host, Origin, token, JSON, sizes, headers), its assets, a node
that is not there answered at once, and its start and stop."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from importlib import resources
from urllib.parse import urlsplit

import pytest

from ovseg_ros.bench.browser import ConsoleProcess
from ovseg_ros.cli.console.security import MAX_BODY, Access, ConsoleConfigError
from ovseg_ros.cli.console.server import ASSETS

TOKEN = "a-test-token-of-enough-length"


@pytest.fixture(scope="module")
def console():
    c = ConsoleProcess("/nobody/ovseg")
    yield c
    assert c.stop() == 0, c.output


@pytest.fixture(scope="module")
def token_console():
    c = ConsoleProcess("/nobody/ovseg", "--token", TOKEN)
    yield c
    assert c.stop() == 0, c.output


def request(console: ConsoleProcess, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (Host: the console's own unless given)."""
    url = urlsplit(console.base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = {"Host": url.netloc, **(headers or {})}
        if body is not None:
            headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def post(console, path, payload, **headers):
    origin = console.base.rstrip("/")
    hdrs = {"Origin": origin, "Content-Type": "application/json", **headers}
    return request(console, "POST", path, json.dumps(payload).encode(), hdrs)


def test_the_page_and_its_assets_with_safe_headers(console):
    status, headers, body = request(console, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'aria-label="Live view"' in body
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    served = {n for n in ASSETS if n != "index.html"}
    shipped = {p.name for p in resources.files("ovseg_ros.cli.console").joinpath(
        "static").iterdir()} - {"index.html"}
    assert served == shipped  # every file of the page, nothing else
    for asset in sorted(served):
        status, headers, body = request(console, "GET", f"/static/{asset}")
        assert status == 200 and headers["content-type"].startswith(ASSETS[asset]) and body
    # Nothing outside the assets: no other file, no path out of the folder.
    for path in ("/static/index.htm", "/static/..%2Fserver.py", "/static/../server.py",
                 "/static/nope.js", "/server.py"):
        assert request(console, "GET", path)[0] == 404, path
    # Every asset the page names is served by us: no address outside this console.
    html = request(console, "GET", "/")[2].decode()
    assert "http://" not in html and "https://" not in html and "//" not in html.replace(
        "<!doctype", "")


def test_a_foreign_host_name_is_refused(console):
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
    port = urlsplit(console.base).port
    for host in (f"evil.example:{port}", "127.0.0.1:1", f"10.0.0.1:{port}", ""):
        status, _, body = request(console, "GET", "/", headers={"Host": host})
        assert status in (400, 421), (host, status)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert request(console, "GET", "/", headers={"Host": host})[0] == 200


def test_state_changing_requests_need_our_origin_and_json(console):
    payload = {"phrase": "cat"}
    body = json.dumps(payload).encode()
    no_origin = request(console, "POST", "/api/query", body,
                        {"Content-Type": "application/json"})
    assert no_origin[0] == 403 and b"Origin" in no_origin[2]
    foreign = post(console, "/api/query", payload, Origin="http://evil.example")
    assert foreign[0] == 403
    form = request(console, "POST", "/api/query", b"phrase=cat",
                   {"Origin": console.base.rstrip("/"),
                    "Content-Type": "application/x-www-form-urlencoded"})
    assert form[0] == 415
    # Ours: through to the node, which is not running: answered at once with why.
    status, _, body = post(console, "/api/query", payload)
    answer = json.loads(body)
    assert status == 503 and not answer["ok"] and "/nobody/ovseg/query is not offered" in \
        answer["message"]


def test_bad_bodies_are_refused_with_a_reason(console):
    big = {"prompts": ["x" * 100] * (MAX_BODY // 100)}
    assert post(console, "/api/prompts", big)[0] == 413
    for path, payload, why in (
            ("/api/prompts", {"prompts": "cat, dog"}, "list"),
            ("/api/prompts", {"prompts": [1, 2]}, "string"),
            ("/api/query", {"phrase": 3}, "'phrase'"),
            ("/api/query", {"phrase": "cat", "threshold": 2}, "threshold"),
            ("/api/pixel", {"u": -1, "v": 0}, "'u' and 'v'"),
            ("/api/pixel", {"u": "1", "v": 0}, "'u' and 'v'"),
            ("/api/query", ["cat"], "JSON object")):
        status, _, body = post(console, path, payload)
        assert status == 400 and why in json.loads(body)["message"], (path, payload, body)
    status, _, body = request(console, "POST", "/api/query", b"{not json",
                              {"Origin": console.base.rstrip("/"),
                               "Content-Type": "application/json"})
    assert status == 400 and b"not JSON" in body


def test_the_websocket_needs_our_origin_and_says_the_node_is_missing(console):
    import asyncio

    import aiohttp

    async def connect(origin):
        async with aiohttp.ClientSession() as session, session.ws_connect(
                console.base + "ws", origin=origin) as ws:
            return json.loads((await ws.receive(timeout=20)).data)

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        asyncio.run(connect("http://evil.example"))
    assert refused.value.status == 403
    hello = asyncio.run(connect(console.base.rstrip("/")))
    assert hello["type"] == "hello" and hello["node"] == "/nobody/ovseg"
    assert hello["found"] is False and hello["cameras"] == []


def test_a_token_is_needed_for_every_request(token_console):
    c = token_console
    assert c.url == c.base + f"?token={TOKEN}"
    assert request(c, "GET", "/")[0] == 403
    assert request(c, "GET", "/static/console.js")[0] == 403
    assert request(c, "GET", "/?token=wrong-token-of-enough-len")[0] == 403
    status, headers, _ = request(c, "GET", f"/?token={TOKEN}")
    assert status == 303 and headers["location"] == "/"  # the token leaves the address bar
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = cookie.split(";")[0]
    assert request(c, "GET", "/", headers={"Cookie": jar})[0] == 200
    assert request(c, "GET", "/api/state", headers={"Authorization": f"token {TOKEN}"})[0] == 200
    status, _, body = post(c, "/api/pixel", {"u": 0, "v": 0}, Cookie=jar)
    assert status == 503  # through: the node is missing
    assert post(c, "/api/pixel", {"u": 0, "v": 0})[0] == 403


def test_beyond_loopback_a_token_is_made_and_short_tokens_are_refused():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert Access.for_address(host, 1, None).token is None, host
    for host in ("0.0.0.0", "192.168.1.20", "::", "robot.local"):
        access = Access.for_address(host, 8765, None)
        assert access.token and len(access.token) >= 24
        assert access.token_url().endswith(f":8765/?token={access.token}")
    assert Access.for_address("0.0.0.0", 1, None).token != Access.for_address(
        "0.0.0.0", 1, None).token
    assert Access.for_address("::", 8765, None).url() == "http://[::]:8765/"
    with pytest.raises(ConsoleConfigError, match="16 characters"):
        Access.for_address("0.0.0.0", 1, "short")


def test_a_busy_port_is_one_error_line(console):
    port = str(urlsplit(console.base).port)
    out = subprocess.run([sys.executable, "-m", "ovseg_ros.cli.entry", "console", "--port",
                          port], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert out.stderr.strip().startswith(f"ovseg: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_console_commands_import_no_torch_and_ignore_ros_args():
    code = ("import sys\n"
            "from ovseg_ros.cli.entry import main\n"
            "try:\n"
            "    main(['console', '--help', '--ros-args', '-r', '__node:=x'])\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules and 'rclpy' not in sys.modules\n"
            "assert 'aiohttp' not in sys.modules\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out
    assert "--max-fps" in out.stdout and "token" in out.stdout


def test_sigterm_ends_the_console_cleanly():
    c = ConsoleProcess("/nobody/ovseg")
    with socket.create_connection((urlsplit(c.base).hostname, urlsplit(c.base).port), 5):
        pass
    c.proc.terminate()
    assert c.proc.wait(20) == 0, c.output
    assert "Traceback" not in c.output
