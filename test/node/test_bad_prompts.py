"""Prompts and parameters through the running node: refusals say why and keep the last good
vocabulary (get_prompts, the `prompts` parameter and the next segmentation all agree).

Each prompt case runs through ~/set_prompts and through a `prompts` parameter change (what
`ros2 param set` sends). A NUL character never reaches the node: ROS strings end at it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from helpers.ros_helpers import image_fields_msg, make_picture, now, wait_for

pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402

START = [("cat", 1), ("dog", 2), ("car", 3)]
LONG = "a very long and detailed description of " + "one more small thing " * 20

# (case id, prompts, None when accepted / a fragment of the refusal reason)
CASES = [
    ("empty_list", [], "empty"),
    ("empty_string", ["cat", ""], "empty or whitespace"),
    ("whitespace_only", [" \t "], "empty or whitespace"),
    ("duplicates", ["cup", "Cup "], "duplicates"),
    ("thousand", [f"thing {i}" for i in range(1000)], "limit of 256"),
    ("over_77_tokens", ["cup", LONG], "77-token"),
    ("control_bell", ["bell\x07"], "control characters"),
    ("control_escape", ["\x1b[2Jred"], "control characters"),
    ("non_ascii", ["café", "椅子"], None),
    ("markup", ["<b>chair</b>", "{x}", "'; DROP TABLE classes;--"], None),
]


class Stream:
    """Publishes a frame stamped with ROS time every `period` s until closed."""

    def __init__(self, ros, ns: str, period: float = 0.05) -> None:
        self.pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
        self.segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
        self._ros, self._period, self._stop = ros, period, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pic = make_picture(24, 32)
        while not self._stop.is_set():
            self.pub.publish(image_fields_msg(pic, stamp=now(self._ros)))
            time.sleep(self._period)

    def next_classes(self) -> list[tuple[str, int]]:
        """Classes of the first segmentation of a frame stamped after this call."""
        t = self._ros.helper.get_clock().now().nanoseconds

        def after(m):
            return m.header.stamp.sec * 10**9 + m.header.stamp.nanosec > t

        assert wait_for(lambda: any(after(m) for m in self.segs.snapshot()), timeout=20.0)
        msg = next(m for m in self.segs.snapshot() if after(m))
        return [(c.class_name, c.class_id) for c in msg.classes]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


@pytest.fixture(scope="module")
def shared(ros, module_seg_node) -> Iterator[tuple]:
    """One streaming node for the prompt cases (a node per case costs ~2 s here)."""
    node, ns = module_seg_node()
    stream = Stream(ros, ns)
    try:
        yield node, ns, stream, dict(START)  # the last: every name -> id the node gave out
    finally:
        stream.close()


@pytest.fixture
def streaming(ros, shared) -> tuple:
    """The shared node, back at START (known names keep their ids, so this is exact)."""
    node, ns, stream, assigned = shared
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("prompts", value=[n for n, _ in START])])
    assert r.successful, r.reason
    assert stream.next_classes() == START
    return node, ns, stream, assigned


def current(ros, node, ns: str) -> list[tuple[str, int]]:
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    pairs = list(zip(got.class_names, got.class_ids, strict=True))
    assert node.get_parameter("prompts").value == [n for n, _ in pairs]  # mirrored
    return pairs


@pytest.mark.parametrize("via", ["service", "parameter"])
@pytest.mark.parametrize("prompts,refusal", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_prompt_cases(ros, streaming, via, prompts, refusal):
    node, ns, stream, assigned = streaming
    if via == "service":
        res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts", SetPrompts.Request(prompts=prompts))
        ok, reason = res.success, res.message
        answered = list(zip(res.class_names, res.class_ids, strict=True))
    else:
        (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("prompts", Parameter.Type.STRING_ARRAY,
                                                        prompts)])
        ok, reason, answered = r.successful, r.reason, None
    if refusal is not None:
        assert not ok and refusal in reason, reason
        assert answered in (None, START)  # the service answers with the kept vocabulary
        expected = START
    else:
        assert ok, reason
        expected = current(ros, node, ns)
        assert [n for n, _ in expected] == prompts  # kept as plain text
        assert answered in (None, expected)
        for name, cid in expected:  # a known name keeps its id, a new one gets a new id
            assert assigned.setdefault(name, cid) == cid
            assert cid not in {v for k, v in assigned.items() if k != name}
    assert current(ros, node, ns) == expected
    assert stream.next_classes() == expected


def set_atomically(ros, ns: str, params: list[Parameter]):
    from rcl_interfaces.srv import SetParametersAtomically

    req = SetParametersAtomically.Request(parameters=[p.to_parameter_msg() for p in params])
    return ros.call(SetParametersAtomically, f"{ns}/ovseg/set_parameters_atomically",
                    req).result


def test_max_prompts_is_a_parameter(ros, seg_node):
    node, ns = seg_node()
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("max_prompts", value=3)])
    assert r.successful, r.reason
    res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                   SetPrompts.Request(prompts=["a", "b", "c", "d"]))
    assert not res.success and "4 prompts exceed the limit of 3" in res.message
    assert current(ros, node, ns) == START
    # Below the prompts in use: refused with the reason (it would make them invalid).
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("max_prompts", value=2)])
    assert not r.successful and r.reason == ("max_prompts=2 is below the 3 prompts in use: "
                                             "remove prompts first")
    assert node.get_parameter("max_prompts").value == 3
    # A new limit and a list in one atomic change: the limit applies first when it grows...
    r = set_atomically(ros, ns, [Parameter("max_prompts", value=4),
                                 Parameter("prompts", value=["a", "b", "c", "d"])])
    assert r.successful, r.reason
    assert [n for n, _ in current(ros, node, ns)] == ["a", "b", "c", "d"]
    # ...after the shorter list when it shrinks...
    r = set_atomically(ros, ns, [Parameter("max_prompts", value=2),
                                 Parameter("prompts", value=["a", "b"])])
    assert r.successful, r.reason
    assert node.segmenter.config.max_prompts == 2
    # ...and when the list is refused, the limit is not changed either.
    r = set_atomically(ros, ns, [Parameter("max_prompts", value=3),
                                 Parameter("prompts", value=["a", "a"])])
    assert not r.successful and node.segmenter.config.max_prompts == 2
    assert node.get_parameter("max_prompts").value == 2
    r = set_atomically(ros, ns, [Parameter("max_prompts", value=1),
                                 Parameter("prompts", value=["a", "b", "c"])])
    assert not r.successful and "3 prompts exceed the limit of 1" in r.reason


# ---- parameters: refused with a reason, old value kept; answered while a frame is stuck -----

BAD_PARAMS = [
    ("threshold", 1.5), ("threshold", "high"), ("threshold", float("nan")),
    ("overlay_alpha", -0.1), ("max_image_pixels", 0), ("max_image_pixels", 2.5),
    ("max_prompts", 0), ("max_prompts", 5000), ("max_prompts", "many"),
    ("no_input_warn_s", 0.1), ("no_input_warn_s", True), ("prompts", "cat"),
    ("cameras", ["front"]), ("input_size", 224),  # read-only
]


def test_out_of_range_and_wrong_type_are_refused_with_a_reason(ros, seg_node):
    node, ns = seg_node()
    before = {name: node.get_parameter(name).value for name, _ in BAD_PARAMS
              if name != "cameras"}
    values = dict(node.values)
    for name, value in BAD_PARAMS:
        (r,) = ros.set_params(f"{ns}/ovseg", [Parameter(name, value=value)])
        assert not r.successful and len(r.reason) > 5, (name, value, r.reason)
    assert {n: node.get_parameter(n).value for n in before} == before
    assert node.values == values and node.segmenter.config.threshold == values["threshold"]


def test_parameter_changes_during_a_frame_in_flight(ros, seg_node):
    """Answered while a frame sits inside the model; that frame is then published with the
    vocabulary it was segmented with, tagged with its version (it arrives after the new map)."""
    from ovseg_ros.msg import LabelMap

    node, ns = seg_node()
    seg = node.segmenter
    real, entered, release = seg.patch_probabilities, threading.Event(), threading.Event()

    def stuck(*args, **kwargs):  # called with the vocabulary the frame already took
        entered.set()
        release.wait(30.0)
        return real(*args, **kwargs)

    seg.patch_probabilities = stuck
    maps = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    try:
        assert wait_for(lambda: pub.get_subscription_count() > 0)
        pub.publish(image_fields_msg(make_picture(24, 32), stamp=now(ros)))
        assert entered.wait(60.0)
        results = ros.set_params(f"{ns}/ovseg", [Parameter("prompts", value=["mug", "cat"]),
                                                 Parameter("threshold", value=0.3)])
        (bad,) = ros.set_params(f"{ns}/ovseg", [Parameter("threshold", value=7.0)])
        (limit,) = ros.set_params(f"{ns}/ovseg", [Parameter("max_prompts", value=10)])
        assert all(r.successful for r in results) and not bad.successful and limit.successful
        assert node.worker.stats().busy and segs.count == 0  # while the frame is held
        assert wait_for(lambda: maps.count and maps.last().version == 2)
    finally:
        release.set()
    assert wait_for(lambda: segs.count >= 1)
    first = segs.snapshot()[0]
    assert first.vocabulary_version == 1
    assert [(c.class_name, c.class_id) for c in first.classes] == START
    seg.patch_probabilities = real
    pub.publish(image_fields_msg(make_picture(24, 32), stamp=now(ros)))
    assert wait_for(lambda: segs.count >= 2)
    assert segs.last().vocabulary_version == 2
    assert [(c.class_name, c.class_id) for c in segs.last().classes] == [("mug", 4), ("cat", 1)]
