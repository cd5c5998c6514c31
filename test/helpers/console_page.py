"""Reading the console's page in a real browser (Selenium), for the console's browser tests:
elements by accessible name, the painted frame, a layer's painted pixels, the boxes shown, and
the documentation's screenshot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from selenium.webdriver.common.by import By

from ovseg_ros.bench.browser import ConsoleProcess, headless_chromium


@contextmanager
def console_rig(ns: str, replay_params: Sequence[str] = ()) -> Iterator[tuple[Any, Any]]:
    """The replay node feeding `ns` (the shipped samples at 4 Hz, plus `replay_params`, each
    "name:=value"), an `ovseg console` on `ns`/ovseg and a headless Chromium on its page:
    (console, chrome); all three ended afterwards."""
    params = [a for p in ("rate:=4.0", *replay_params) for a in ("-p", p)]
    replay = subprocess.Popen([sys.executable, "-m", "ovseg_ros.node.replay_node", "--ros-args",
                               "-r", f"__ns:={ns}", *params],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    console = ConsoleProcess(f"{ns}/ovseg")
    chrome = headless_chromium()
    try:
        chrome.get(console.url)
        yield console, chrome
    finally:
        chrome.quit()
        console.stop()
        replay.send_signal(2)
        try:
            replay.wait(10)
        except subprocess.TimeoutExpired:
            replay.kill()


def named(chrome: Any, label: str) -> Any:
    """The element with accessible name `label` (aria-label), as tests and screen readers
    find it."""
    return chrome.find_element(By.CSS_SELECTOR, f"[aria-label='{label}']")


def seq(chrome: Any) -> int:
    """The console's sequence number of the frame the page painted last (0: none yet)."""
    return int(named(chrome, "Live view").get_attribute("data-seq") or 0)


def painted_pixels(chrome: Any, canvas_id: str) -> int:
    """Pixels of a layer (canvas) that are not transparent."""
    return chrome.execute_script(
        "const c = document.getElementById(arguments[0]); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;", canvas_id)


def shown_boxes(chrome: Any) -> dict[str, Any]:
    """The boxes over the live view, read in one go (one frame's): the stamp of their frame,
    whether its detections came (`detections`), how many boxes are drawn (`count`), their
    labels as listed ("cup #7"), their rectangles ([x, y, width, height] in pixels, as listed)
    and the layer's painted pixels."""
    return chrome.execute_script(
        "const c = document.getElementById('boxes'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
        "for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;"
        "return {stamp: c.dataset.stamp || '', detections: c.dataset.detections || '',"
        " count: Number(c.dataset.count || 0), pixels: n, labels: Array.from("
        " document.querySelectorAll('#box-labels .box-name'), (e) => e.textContent),"
        " rects: Array.from(document.querySelectorAll('#box-labels li'),"
        "  (e) => e.dataset.box.split(' ').map(Number))};")


def save_small_png(png: bytes, path: str) -> None:
    """A screenshot with a 256-colour palette: a small file for the repository."""
    import io

    from PIL import Image

    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(path, optimize=True)
