"""`ovseg console` in a real headless Chromium against a real node fed with the shipped samples
(the replay node): the live view updates, Apply changes the node's vocabulary (read back over
rclpy), a refusal and a busy answer show the node's own words and are not retried, a click
shows the pixel's classes, a query shows a heatmap, a hostile name stays text, every request
stays on 127.0.0.1 and the page logs no error. A WebSocket client that never acknowledges
gets one frame, not a queue. The node has objects off: the page shows no boxes and says why
(the boxes themselves: test_console_boxes_browser.py).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers.ros_helpers import wait_for

from ovseg_ros.bench.browser import (
    console_errors,
    requested_urls,
)

pytestmark = pytest.mark.slow  # a browser, a console and a replay: about 40 s

rclpy = pytest.importorskip("rclpy")
from helpers.console_page import (  # noqa: E402
    console_rig,
    named,
    painted_pixels,
    seq,
    shown_boxes,
)
from rclpy.parameter import Parameter  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402

from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)>"
PROMPTS = ["cat", "grass", "sky"]


def heat_pixels(chrome) -> int:
    return painted_pixels(chrome, "heat")


@pytest.fixture(scope="module")
def rig(ros, module_seg_node):
    node, ns = module_seg_node(prompts=PROMPTS, threshold=0.0)
    with console_rig(ns) as (console, chrome):
        yield node, ns, console, chrome


def test_the_live_view_updates_and_shows_latency(rig):
    node, ns, console, chrome = rig
    assert wait_for(lambda: seq(chrome) > 0, timeout=90), console.output
    first = seq(chrome)
    assert wait_for(lambda: seq(chrome) >= first + 3, timeout=60)
    status = chrome.find_element(By.ID, "status").text
    assert "fps shown" in status and "ms in the node" in status, status
    paints = chrome.execute_script("return window.ovsegConsole.paints")
    assert len(paints) >= 4 and all(p["paint_ms"] > 0 and p["publish_ms"] > 0 for p in paints)
    legend = named(chrome, "Legend").text
    assert all(name in legend for name in PROMPTS), legend
    live = named(chrome, "Live view")
    assert live.get_attribute("data-view") == "labels"  # the default: no work for the node
    assert chrome.execute_script("return document.getElementById('view').value") == "labels"
    for mode in ("overlay", "labels"):  # the node's overlay while it is shown, then back
        Select(named(chrome, "View")).select_by_value(mode)
        assert wait_for(lambda m=mode: live.get_attribute("data-view") == m, timeout=60), mode


def test_with_objects_off_no_boxes_and_no_error(rig):
    node, ns, console, chrome = rig
    assert wait_for(lambda: shown_boxes(chrome)["stamp"], timeout=90)
    boxes = shown_boxes(chrome)
    assert boxes["detections"] == "unavailable", boxes
    assert boxes["count"] == 0 and boxes["labels"] == [] and boxes["pixels"] == 0
    assert "objects:=true" in named(chrome, "Boxes status").text
    assert named(chrome, "Boxes").is_selected()  # on, with nothing to show


def test_apply_changes_the_vocabulary_and_a_refusal_shows_the_reason(rig, ros):
    node, ns, console, chrome = rig
    box, apply, result = named(chrome, "Vocabulary"), named(chrome, "Apply"), \
        named(chrome, "Vocabulary result")
    box.clear()
    box.send_keys("cat, grass, sky, tree")
    apply.click()
    assert wait_for(lambda: result.text.startswith("applied"), timeout=120), result.text
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    assert list(got.class_names) == ["cat", "grass", "sky", "tree"]
    assert wait_for(lambda: "tree" in named(chrome, "Legend").text, timeout=30)
    # A refusal: the node's own reason, word for word (the same request over rclpy).
    bad = ["cat", "Cat"]
    box.clear()
    box.send_keys(", ".join(bad))
    apply.click()
    assert wait_for(lambda: result.text and not result.text.startswith("appl"), timeout=60), \
        result.text
    direct = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts", SetPrompts.Request(prompts=bad))
    assert not direct.success and result.text == direct.message
    assert "bad" in result.get_attribute("class")
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    assert list(got.class_names) == ["cat", "grass", "sky", "tree"]  # nothing changed


def test_a_hostile_name_renders_as_text(rig, ros):
    node, ns, console, chrome = rig
    box, apply, result = named(chrome, "Vocabulary"), named(chrome, "Apply"), \
        named(chrome, "Vocabulary result")
    box.clear()
    box.send_keys(f"cat, {HOSTILE}")
    apply.click()
    assert wait_for(lambda: result.text.startswith("applied"), timeout=120), result.text
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    assert HOSTILE in list(got.class_names)
    legend = named(chrome, "Legend")
    assert wait_for(lambda: HOSTILE in legend.text, timeout=30), legend.text
    names = [e.text for e in legend.find_elements(By.CSS_SELECTOR, ".name")]
    assert HOSTILE in names and HOSTILE in result.text
    assert chrome.find_elements(By.TAG_NAME, "img") == []  # never parsed as HTML
    with pytest.raises(NoAlertPresentException):
        chrome.switch_to.alert.text  # noqa: B018
    box.clear()
    box.send_keys(", ".join(PROMPTS))
    apply.click()
    assert wait_for(lambda: result.text.startswith("applied") and HOSTILE not in result.text,
                    timeout=120), result.text


def test_a_click_shows_the_pixels_classes(rig):
    node, ns, console, chrome = rig
    assert wait_for(lambda: seq(chrome) > 0, timeout=90)
    # A frame labelled with the current vocabulary (the last test changed it): two more.
    now = seq(chrome)
    assert wait_for(lambda: seq(chrome) >= now + 2, timeout=60)
    panel = named(chrome, "Pixel classes")
    named(chrome, "Live view").click()
    assert wait_for(lambda: panel.text.startswith("Pixel ("), timeout=60), panel.text
    lines = panel.text.splitlines()
    vocabulary = set(PROMPTS) | {"background"}
    assert "confidence" in lines[0] and any(n in lines[0] for n in vocabulary), lines
    assert lines[-1].startswith("from the node's frame "), lines
    ranked = lines[1:-1]
    assert 2 <= len(ranked) <= 5 and all(r.rsplit(" ", 1)[0] in vocabulary for r in ranked)
    probabilities = [float(r.rsplit(" ", 1)[1]) for r in ranked]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_query_shows_a_heatmap_without_changing_the_vocabulary(rig, ros):
    node, ns, console, chrome = rig
    assert wait_for(lambda: seq(chrome) > 0, timeout=90)
    named(chrome, "Query").send_keys("a fluffy animal")
    result = named(chrome, "Query result")
    assert wait_for(lambda: result.get_attribute("data-phrase") == "a fluffy animal",
                    timeout=60), result.text
    assert "not in the vocabulary" in result.text
    # Shown over frames of the answer's size (the samples have three sizes).
    assert wait_for(lambda: heat_pixels(chrome) > 0, timeout=30)
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    assert "a fluffy animal" not in got.class_names
    chrome.find_element(By.ID, "clear-query").click()


def test_busy_answers_are_shown_not_retried(rig, ros):
    """With one query a minute admitted, the page's query and click show the node's busy
    answer, and the page does not ask again by itself."""
    node, ns, console, chrome = rig
    (res,) = ros.set_params(f"{ns}/ovseg", [Parameter("query_rate_hz", value=1 / 60)])
    assert res.successful
    try:
        assert wait_for(lambda: seq(chrome) > 0, timeout=90)
        box, result = named(chrome, "Query"), named(chrome, "Query result")
        box.clear()
        box.send_keys("a red mug")
        assert wait_for(lambda: "busy:" in result.text or result.get_attribute("data-phrase"),
                        timeout=60)
        box.send_keys(" on a table")  # a new phrase: refused, the rate is spent
        assert wait_for(lambda: result.text.startswith("busy:"), timeout=60), result.text
        named(chrome, "Live view").click()
        panel = named(chrome, "Pixel classes")
        assert wait_for(lambda: panel.text.startswith("busy:"), timeout=60), panel.text
        # Typing under load can leave one debounced phrase waiting behind another; once the
        # count stops moving, the page sends nothing more on its own.
        refused = -1
        while refused != node.heavy.queries.refused:
            refused = node.heavy.queries.refused
            time.sleep(1.0)
        time.sleep(3.0)  # frames keep coming; a page that retried would be refused again
        assert node.heavy.queries.refused == refused
    finally:
        ros.set_params(f"{ns}/ovseg", [Parameter("query_rate_hz", value=10.0)])
        chrome.find_element(By.ID, "clear-query").click()


def test_latest_frame_wins_for_a_page_that_does_not_paint(rig):
    """A WebSocket client that watches and never acknowledges gets exactly one frame while
    the node goes on; after its acknowledgement the next one is the newest, not the next."""
    import aiohttp

    from ovseg_ros.cli.console.frames import decode_packet

    node, ns, console, chrome = rig

    async def frame(ws, timeout: float) -> int:
        while True:
            msg = await ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.BINARY:
                return decode_packet(msg.data)[0]["seq"]

    async def run() -> tuple[int, int, int, int]:
        origin = console.base.rstrip("/")
        async with aiohttp.ClientSession() as session, session.ws_connect(
                console.base + "ws", origin=origin) as ws:
            await ws.send_json({"type": "watch", "camera": "", "view": "labels"})
            frames = [await frame(ws, 60.0)]
            try:  # 4 s at 4 Hz (an unacknowledged page gets its next frame after 5 s)
                frames.append(await frame(ws, 4.0))
            except asyncio.TimeoutError:
                pass
            shown = seq(chrome)  # the browser page acknowledges: frames went on meanwhile
            await ws.send_json({"type": "ack", "seq": frames[0]})
            return len(frames), frames[0], await frame(ws, 30.0), shown
    count, first, after, shown = asyncio.run(run())
    assert count == 1  # one frame sent: the others were never queued
    assert after > first + 1 and after >= shown - 2  # the newest then, frames skipped


def test_no_request_leaves_loopback_and_no_errors(rig):
    node, ns, console, chrome = rig
    assert wait_for(lambda: seq(chrome) > 0, timeout=90)
    named(chrome, "Query").clear()
    named(chrome, "Query").send_keys("a fluffy animal")
    result = named(chrome, "Query result")
    assert wait_for(lambda: result.get_attribute("data-phrase") == "a fluffy animal", timeout=60)
    named(chrome, "Live view").click()
    assert wait_for(lambda: named(chrome, "Pixel classes").text.startswith("Pixel ("),
                    timeout=60)
    urls = requested_urls(chrome)
    base = console.base  # http://127.0.0.1:PORT/
    for path in ("", "static/console.js", "static/boxes.js", "static/console.css", "api/pixel",
                 "api/query"):
        assert base + path in urls, (path, urls)
    assert base.replace("http:", "ws:", 1) + "ws" in urls
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")]
    # The rest are the browser's own pages (chrome://, chrome-untrusted://) and data: URLs.
    assert [u for u in network if not u.startswith((base, base.replace("http:", "ws:", 1)))] \
        == [], network
    assert console_errors(chrome) == []
    assert chrome.execute_script("return window.ovsegConsole.errors") == []
