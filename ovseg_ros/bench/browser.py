"""A real browser and a real console process, for the console's benchmark and tests.

- `ConsoleProcess`: `ovseg console` as a child process on a free loopback port; its address
  is read from the line it prints; stopped with SIGINT (then killed) by its own PID.
- `headless_chromium`: the system's Chromium (Debian's `chromium` + `chromium-driver`,
  scripts/test_browser.sh) driven by Selenium, headless, with a fresh profile and every
  background service off, so the only requests it makes are the page's own; its browser and
  performance logs are kept (`console_errors`, `requested_urls`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--disable-features=Translate,OptimizationHints,MediaRouter")


class BrowserMissing(RuntimeError):
    """Chromium, its driver or Selenium is not installed."""


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths; BrowserMissing says how to install them."""
    browser = next((p for p in CHROMIUM if Path(p).is_file()), shutil.which("chromium"))
    driver = next((p for p in CHROMEDRIVER if Path(p).is_file()), shutil.which("chromedriver"))
    if not browser or not driver:
        raise BrowserMissing("the console's browser checks need Debian's chromium and "
                             "chromium-driver: sudo bash scripts/test_browser.sh")
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise BrowserMissing("the console's browser checks need selenium (scripts/distros/"
                             "common.txt): pip install selenium") from None
    return browser, driver


def headless_chromium(width: int = 1400, height: int = 900, idle: bool = False) -> Any:
    """A Selenium WebDriver on a headless Chromium with a fresh profile (quit() ends it);
    `idle` runs the browser's processes under the SCHED_IDLE policy, on CPU time nothing else
    wants (a stand-in for a browser on another machine; a nice value would not hold: Chromium
    sets its processes' own, and may raise them when run as root)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="ovseg-chromium-")
    if idle:  # every process Chromium starts inherits the policy
        wrapper = Path(profile) / "chromium-idle"
        wrapper.write_text(f'#!/bin/sh\nexec chrt --idle 0 {browser} "$@"\n')
        wrapper.chmod(0o755)
        browser = str(wrapper)
    options.binary_location = browser
    for flag in FLAGS + (f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    quit_chrome = chrome.quit

    def quit_and_clean() -> None:
        try:
            quit_chrome()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    chrome.quit = quit_and_clean
    return chrome


def requested_urls(chrome: Any) -> list[str]:
    """Every URL the browser requested since the last call (HTTP and WebSocket), from Chrome's
    performance log."""
    urls = []
    for entry in chrome.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message.get("method") == "Network.webSocketCreated":
            urls.append(params["url"])
    return urls


def console_errors(chrome: Any) -> list[str]:
    """The browser console's errors since the last call."""
    return [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]


class ConsoleProcess:
    """`ovseg console --node NODE --port 0` and its output; `url` once it listens."""

    def __init__(self, node: str, *extra: str, timeout: float = 60.0,
                 env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ovseg_ros.cli.entry", "console",
                                      "--node", node, "--port", "0", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ovseg console did not start:\n" + self.output)
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def url(self) -> str:
        """The address it printed (with ?token= when it needs one), or ''."""
        for line in list(self.lines):
            if line.startswith("ovseg console: http"):
                return line.split()[2]
        return ""

    @property
    def base(self) -> str:
        return self.url.split("?")[0]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (as Ctrl-C), then SIGKILL after `timeout`; the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode
