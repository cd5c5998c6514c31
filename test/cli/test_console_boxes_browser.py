"""The console's object boxes in a real headless Chromium, against a real node with objects on
fed the shipped samples: the boxes over the live view are the detections of the very frame
shown (their count, and their labels "name #track" as received over rclpy for that frame's
stamp), the Boxes toggle hides and shows them, and a hostile class name is drawn and listed
as text.

The screenshot of doc/console.md comes from here: OVSEG_CONSOLE_SCREENSHOT=doc/images/console.png.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from helpers.ros_helpers import wait_for

from ovseg_ros.bench.browser import console_errors
from ovseg_ros.io.media import samples_dir

pytestmark = pytest.mark.slow  # a browser, a console and a replay: about 30 s

rclpy = pytest.importorskip("rclpy")
from helpers.console_page import (  # noqa: E402
    console_rig,
    named,
    painted_pixels,
    save_small_png,
    seq,
    shown_boxes,
)
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from ovseg_ros.node import qos  # noqa: E402
from ovseg_ros.srv import SetPrompts  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)>"
PROMPTS = ["cat", "grass", "sky"]


class Detections:
    """Every ~/detections message received over rclpy, as the page shows its boxes:
    {stamp "sec.nanosec": (["cup #7", ...], [[x, y, width, height], ...])}."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_stamp: dict[str, tuple[list[str], list[list[float]]]] = {}

    def __call__(self, msg: Detection2DArray) -> None:
        stamp = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
        labels = [f"{d.results[0].hypothesis.class_id} #{d.id}" for d in msg.detections]
        rects = [[d.bbox.center.position.x - d.bbox.size_x / 2,
                  d.bbox.center.position.y - d.bbox.size_y / 2, d.bbox.size_x, d.bbox.size_y]
                 for d in msg.detections]
        with self.lock:
            self.by_stamp[stamp] = labels, rects

    def get(self, stamp: str) -> tuple[list[str], list[list[float]]] | None:
        with self.lock:
            return self.by_stamp.get(stamp)


@pytest.fixture(scope="module")
def rig(ros, module_seg_node):
    # No background class: every pixel is one of the names, so a frame has objects, and a
    # vocabulary of one name is one object over the whole frame.
    node, ns = module_seg_node(prompts=PROMPTS, threshold=0.0, background=False,
                               objects=True, object_min_area=0.02)
    received = Detections()
    ros.helper.create_subscription(Detection2DArray, f"{ns}/ovseg/detections", received,
                                   qos.reliable(50))
    ros.executor.wake()
    # The shipped samples (three sizes); the documentation's picture shows one of them.
    source = [] if not os.environ.get("OVSEG_CONSOLE_SCREENSHOT") else [
        f"source:={samples_dir() / 'chelsea.jpg'}"]
    with console_rig(ns, source) as (console, chrome):
        yield node, ns, console, chrome, received


def frames_with_boxes(chrome, received: Detections, frames: int) -> dict[str, dict]:
    """The page's boxes of `frames` painted frames whose detections came with them, each
    once rclpy has that frame's detections too."""
    seen: dict[str, dict] = {}

    def more() -> bool:
        boxes = shown_boxes(chrome)
        if boxes["detections"] == "received":
            seen.setdefault(boxes["stamp"], boxes)
        return len(seen) >= frames

    assert wait_for(more, timeout=120), seen
    assert wait_for(lambda: all(received.get(s) is not None for s in seen), timeout=30), \
        [s for s in seen if received.get(s) is None]
    return seen


def test_the_boxes_are_the_detections_of_the_frame_shown(rig):
    node, ns, console, chrome, received = rig
    assert wait_for(lambda: seq(chrome) > 0, timeout=90), console.output
    seen = frames_with_boxes(chrome, received, 6)
    for stamp, boxes in seen.items():
        labels, rects = received.get(stamp)  # "name #track id" and box per detection, in order
        assert boxes["labels"] == labels and boxes["rects"] == rects, (stamp, boxes, labels, rects)
        assert boxes["count"] == len(labels)
        assert (boxes["pixels"] > 0) == (len(labels) > 0)  # drawn on the layer
    assert any(b["count"] > 0 for b in seen.values()), seen
    if not os.environ.get("OVSEG_CONSOLE_SCREENSHOT"):  # all three samples, not one
        # They differ: boxes of another frame would not pass for this frame's.
        assert len({str(b["rects"]) for b in seen.values()}) > 1, seen
    status = named(chrome, "Boxes status").text
    assert "in this frame" in status, status


def test_the_boxes_toggle_hides_and_shows_them(rig):
    node, ns, console, chrome, received = rig
    assert wait_for(lambda: shown_boxes(chrome)["count"] > 0, timeout=120)
    toggle = named(chrome, "Boxes")
    assert toggle.is_selected()
    toggle.click()
    assert not toggle.is_selected()
    now = seq(chrome)
    assert wait_for(lambda: seq(chrome) >= now + 2, timeout=60)  # new frames stay unboxed
    boxes = shown_boxes(chrome)
    assert boxes["count"] == 0 and boxes["labels"] == [] and boxes["pixels"] == 0, boxes
    assert "(boxes hidden)" in named(chrome, "Boxes status").text
    toggle.click()
    assert wait_for(lambda: shown_boxes(chrome)["count"] > 0, timeout=60)
    assert shown_boxes(chrome)["pixels"] > 0


def test_a_hostile_class_name_is_drawn_as_text(rig, ros):
    node, ns, console, chrome, received = rig
    res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts", SetPrompts.Request(prompts=[HOSTILE]),
                   timeout=120.0)
    assert res.success, res.message
    try:
        def hostile_frame() -> bool:
            boxes = shown_boxes(chrome)
            return boxes["detections"] == "received" and any(
                label.startswith(HOSTILE + " #") for label in boxes["labels"])

        assert wait_for(hostile_frame, timeout=120), shown_boxes(chrome)
        boxes = shown_boxes(chrome)
        assert wait_for(lambda: received.get(boxes["stamp"]) is not None, timeout=30)
        assert boxes["labels"] == received.get(boxes["stamp"])[0]  # the name and the track id
        listed = [e.text for e in chrome.find_elements(By.CSS_SELECTOR, "#box-labels .box-name")]
        assert any(t.startswith(HOSTILE + " #") for t in listed), listed
        assert chrome.find_elements(By.TAG_NAME, "img") == []  # never parsed as HTML
        with pytest.raises(NoAlertPresentException):
            chrome.switch_to.alert.text  # noqa: B018
    finally:
        res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                       SetPrompts.Request(prompts=PROMPTS), timeout=120.0)
        assert res.success, res.message


def test_no_errors_and_the_screenshot(rig):
    node, ns, console, chrome, received = rig
    assert wait_for(lambda: seq(chrome) > 0, timeout=90)
    assert console_errors(chrome) == []
    assert chrome.execute_script("return window.ovsegConsole.errors") == []
    if not os.environ.get("OVSEG_CONSOLE_SCREENSHOT"):
        return
    # The documentation's picture: the overlay, a class's heatmap, a clicked pixel, the boxes.
    chrome.set_window_size(1400, 1180)
    Select(named(chrome, "View")).select_by_value("overlay")
    assert wait_for(lambda: named(chrome, "Live view").get_attribute("data-view") == "overlay",
                    timeout=60)
    named(chrome, "Query").send_keys("cat")  # a class: its probability, a clear heatmap
    result = named(chrome, "Query result")
    assert wait_for(lambda: result.get_attribute("data-phrase") == "cat", timeout=60)
    assert wait_for(lambda: painted_pixels(chrome, "heat") > 0, timeout=30)
    named(chrome, "Live view").click()
    assert wait_for(lambda: named(chrome, "Pixel classes").text.startswith("Pixel ("),
                    timeout=60)
    assert wait_for(lambda: shown_boxes(chrome)["count"] > 0, timeout=60)
    time.sleep(1.0)
    save_small_png(chrome.get_screenshot_as_png(), os.environ["OVSEG_CONSOLE_SCREENSHOT"])
