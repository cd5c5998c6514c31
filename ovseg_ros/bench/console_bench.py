"""The `console` section (opt-in: it needs Chromium, scripts/test_browser.sh): what
`ovseg console` costs the node, and how soon a page shows a frame.

A node process labels a camera published from this process faster than it can keep up
(StormRig, bench/storms.py); this process counts its ~/segmentation messages. First and last a
window with no console at all; between them `ovseg console` (at its default priority, nice 10)
runs beside five headless Chromium browsers under SCHED_IDLE (stand-ins for browsers on other
machines: they run on CPU time nothing else wants), and `rounds` rounds of four windows each (order
rotated per round, so that a drift of the machine's load spreads over all four): no page open
(every browser on about:blank), the console's page open in one browser and in all five (the
default label view), and in all five in the overlay view (the node then draws its overlay).
Per kind of window: the node's frames/s (frames stamped in the window over its length) and its
mean inference time, and their ratios to the windows with no page. Last, one window with the
page in a sixth browser at normal priority: the latency a user sees.

Latency: a page's paint time of each frame (`performance.timeOrigin + performance.now()` in
the page's requestAnimationFrame after drawing it) minus the time this process received the
frame's ~/segmentation message, the last message the node publishes for a frame (its
publication plus one local hop; one machine, one clock).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

from .storms import StormRig

KINDS = ("0_pages", "1_page", "5_pages", "5_overlay")
OPEN = {"0_pages": 0, "1_page": 1, "5_pages": 5, "5_overlay": 5}


def _window(rig: StormRig, seconds: float) -> dict[str, float]:
    t0 = rig.now()
    time.sleep(seconds)
    t1 = rig.now()
    time.sleep(0.5)  # frames of the window still on the wire
    with rig._lock:
        keys = [k for k in rig.inference_ms if t0 <= k[0] + k[1] * 1e-9 < t1]
        inference = [rig.inference_ms[k] for k in keys]
    return {"seconds": t1 - t0, "frames": len(keys), "frames_per_s": len(keys) / (t1 - t0),
            "inference_ms": statistics.mean(inference) if inference else float("nan")}


def _paints(chrome: Any) -> list[dict[str, Any]]:
    return chrome.execute_script("const c = window.ovsegConsole; if (!c) return [];"
                                 "const p = c.paints.slice(); c.paints.length = 0; return p;")


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {"count": len(values), "median": statistics.median(values),
            "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            "max": ordered[-1]}


def _show(browsers: list[Any], count: int, url: str, mode: str) -> None:
    """The console's page in the first `count` browsers in view `mode` (waiting for a frame
    painted so in each), a blank page in the others."""
    for i, chrome in enumerate(browsers):
        want = url if i < count else "about:blank"
        if chrome.current_url.split("?")[0] != want.split("?")[0]:
            chrome.get(want)
    deadline = time.monotonic() + 120
    for chrome in browsers[:count]:
        chrome.execute_script("const s = document.getElementById('view'); s.value = "
                              "arguments[0]; s.dispatchEvent(new Event('change'));", mode)
        while chrome.execute_script(
                "const l = document.getElementById('live'); return l && l.dataset.view") != mode:
            if time.monotonic() > deadline:
                raise RuntimeError(f"a console page showed no frame in its {mode} view")
            time.sleep(0.2)
        _paints(chrome)  # from here on


def _page_window(rig: StormRig, shown: list[Any], seconds: float,
                 kind: str = "1_page_normal") -> dict[str, Any]:
    """One window with `shown` browsers on the console's page: frames/s, paints, delays."""
    from .browser import console_errors

    window = {"kind": kind, **_window(rig, seconds)}
    delays, painted = [], []
    for chrome in shown:
        paints = _paints(chrome)
        painted.append(len(paints))
        with rig._lock:
            delays += [x["paint_ms"] - 1e3 * rig.arrived[(x["sec"], x["nanosec"])]
                       for x in paints if (x["sec"], x["nanosec"]) in rig.arrived]
    window["delays_ms"] = delays
    window["frames_painted_per_page"] = painted
    window["console_errors"] = sum(len(console_errors(c)) for c in shown)
    return window


def bench_console(params: Mapping[str, Any], register: str = "",
                  size: tuple[int, int] = (480, 640), rate_hz: float = 15.0,
                  window_s: float = 30.0, rounds: int = 3) -> dict[str, Any]:
    """See the module docstring; `size` is (H, W) of the camera."""
    from .browser import ConsoleProcess, headless_chromium

    results: dict[str, Any] = {"params": dict(params), "camera_hz": rate_hz,
                               "camera_size": [size[1], size[0]], "window_s": window_s,
                               "rounds": rounds}
    windows: list[dict[str, Any]] = []
    with StormRig(params, ns="/console_bench", size=size, rate_hz=rate_hz,
                  register=register) as rig:
        if not rig.wait_frames(3):
            raise RuntimeError("no frames labelled:\n" + "\n".join(rig.lines[-20:]))
        windows.append({"kind": "no_console", **_window(rig, window_s)})
        console = ConsoleProcess(f"{rig.ns}/ovseg")
        browsers: list[Any] = []
        try:
            browsers = [headless_chromium(width=1280, height=900, idle=True)
                         for _ in range(5)]
            for r in range(rounds):
                for kind in KINDS[r % len(KINDS):] + KINDS[:r % len(KINDS)]:
                    _show(browsers, OPEN[kind], console.url,
                          "overlay" if kind.endswith("overlay") else "labels")
                    windows.append({**_page_window(rig, browsers[:OPEN[kind]], window_s, kind),
                                    "round": r})
            # The latency a user sees: one more browser, at normal priority, on its own.
            _show(browsers, 0, console.url, "labels")
            browsers.append(headless_chromium(width=1280, height=900))
            _show(browsers[-1:], 1, console.url, "labels")
            windows.append(_page_window(rig, browsers[-1:], window_s))
        finally:
            for chrome in browsers:
                chrome.quit()
            console.stop()
        windows.append({"kind": "no_console", **_window(rig, window_s)})
        configured = next((ln for ln in rig.lines if "configured:" in ln), "")
    results["windows"] = windows
    results["kinds"] = summarise(windows)
    results["node_configured"] = configured.split("]: ", 1)[-1]
    return results


def summarise(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind of window: frames/s and inference ms (means over its windows), their ratio to
    the windows with no page, and the publication-to-paint spread of all its paints."""
    kinds: dict[str, Any] = {}
    for kind in ("no_console", *KINDS, "1_page_normal"):
        mine = [w for w in windows if w["kind"] == kind]
        if not mine:
            continue
        frames = sum(w["frames"] for w in mine)
        seconds = sum(w["seconds"] for w in mine)
        kinds[kind] = {
            "windows": len(mine), "frames": frames, "frames_per_s": frames / seconds,
            "inference_ms": statistics.mean(w["inference_ms"] for w in mine),
            "publish_to_paint_ms": _spread([d for w in mine for d in w.get("delays_ms", [])]),
            "console_errors": sum(w.get("console_errors", 0) for w in mine)}
    base = kinds.get("0_pages", {})
    for k in kinds.values():
        k["frames_vs_no_page"] = (k["frames_per_s"] / base["frames_per_s"]
                                  if base.get("frames_per_s") else float("nan"))
        k["inference_vs_no_page"] = (k["inference_ms"] / base["inference_ms"]
                                     if base.get("inference_ms") else float("nan"))
    # Each round's windows ran back to back: a ratio within a round sees one machine load.
    no_page = {w["round"]: w["frames_per_s"] for w in windows
               if w["kind"] == "0_pages" and "round" in w}
    for kind, k in kinds.items():
        ratios = [w["frames_per_s"] / no_page[w["round"]] for w in windows
                  if w["kind"] == kind and no_page.get(w.get("round"))]
        k["frames_vs_no_page_per_round"] = ratios
        k["frames_vs_no_page_median"] = statistics.median(ratios) if ratios else float("nan")
    return kinds


def table(results: Mapping[str, Any]) -> str:
    rows = ["| windows | node frames/s | vs no page | vs no page, per round (median) | "
            "node inference ms | publication -> paint ms (median / p90 / max, paints) |",
            "| --- | --- | --- | --- | --- | --- |"]
    labels = {"no_console": "no console", "0_pages": "console, no page open",
              "1_page": "console, 1 page", "5_pages": "console, 5 pages (5 browsers)",
              "5_overlay": "console, 5 pages in the overlay view",
              "1_page_normal": "console, 1 page, its browser at normal priority"}
    for kind, k in results["kinds"].items():
        lat = k["publish_to_paint_ms"]
        latency = (f"{lat['median']:.0f} / {lat['p90']:.0f} / {lat['max']:.0f} "
                   f"({lat['count']})" if lat.get("count") else "-")
        rounds = ", ".join(f"{x:.2f}" for x in k.get("frames_vs_no_page_per_round", []))
        per_round = (f"{rounds} ({k['frames_vs_no_page_median']:.2f})" if rounds else "-")
        rows.append(f"| {labels[kind]} ({k['windows']}) | {k['frames_per_s']:.3f} | "
                    f"{k['frames_vs_no_page']:.3f} | {per_round} | {k['inference_ms']:.0f} | "
                    f"{latency} |")
    return "\n".join(rows)
