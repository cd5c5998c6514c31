"""A real HTTPS server on 127.0.0.1 serving one folder, for download tests (a pytest plugin:
test/conftest.py loads it for the `https_folder` fixture).

The certificate is a fresh self-signed one made with the openssl command; the test process and
its children trust it through SSL_CERT_FILE (read by OpenSSL for every new connection), and
NO_PROXY keeps the traffic off any proxy. Nothing leaves this machine.
"""

from __future__ import annotations

import functools
import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class HttpsFolder:
    """`root` is served at `url`; `requests` lists the paths asked for, in order."""

    root: Path
    url: str
    env: dict[str, str]
    requests: list[str] = field(default_factory=list)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def https_folder(tmp_path_factory, monkeypatch) -> Iterator[HttpsFolder]:
    tls = tmp_path_factory.mktemp("tls")
    root = tmp_path_factory.mktemp("served")
    cert, key = _self_signed(tls)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the base class's name)
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {"SSL_CERT_FILE": str(cert), "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield HttpsFolder(root, f"https://127.0.0.1:{server.server_address[1]}", env, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)
