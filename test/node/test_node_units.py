"""Node building blocks without a running node: parameters, health rules, message helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ovseg_ros.core.config import SegmenterConfig
from ovseg_ros.core.settings import ConfigError
from ovseg_ros.node import params as P
from ovseg_ros.node.diagnostics import ERROR, OK, WARN, HealthMonitor, Throttle
from ovseg_ros.settings.parameters import DYNAMIC, SETTINGS, build_configs


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ---- parameters -------------------------------------------------------------------------------


def test_every_parameter_is_documented_and_ranged_consistently():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert len(s.doc) > 20, s.name
        assert s.problem(s.default) is None, s.name  # defaults are valid
        if s.kind in (int, float):
            assert s.low is not None, f"{s.name} is numeric but has no range"
        desc = P.description(s)
        assert (P.RUNTIME if s.dynamic else P.START_UP) in desc and s.doc in desc
    assert {"prompts", "threshold", "overlay_alpha", "max_prompts", "threads"} <= DYNAMIC
    assert {"model", "clip_weights", "device", "cameras", "autostart"}.isdisjoint(DYNAMIC)


def test_parameter_values_map_onto_the_core_configs():
    values = {s.name: s.default for s in SETTINGS}
    seg, kf, node = build_configs(values)
    assert seg == SegmenterConfig() and node.prompts == values["prompts"]
    assert not kf.enabled and kf.asynchronous  # no schedule, no keyframes: nothing loaded
    assert (kf.prior, kf.prior_half_life) == (True, (values["prior_half_life_frames"], "frames"))
    _, kf, _ = build_configs({**values, "keyframe_every_n": 15, "prior_half_life_s": 2.5})
    assert kf.enabled and kf.keyframe_every_n == 15
    assert (kf.prior, kf.prior_half_life) == (True, (2.5, "seconds"))
    _, kf, _ = build_configs({**values, "keyframes": True, "prior_half_life_frames": 0.0})
    assert kf.enabled and not kf.prior


def test_build_configs_names_every_problem_at_once():
    values = {s.name: s.default for s in SETTINGS}
    with pytest.raises(ConfigError) as err:
        build_configs({**values, "device": "tpu", "keyframe_model": "ViT-B-32",
                       "overlay_alpha": 3.0})
    text = str(err.value)
    assert "device='tpu'" in text and "keyframe_model and keyframe_weights" in text
    assert "overlay_alpha=3.0 is outside [0, 1]" in text


@pytest.mark.parametrize("name,value,fragment", [
    ("overlay_alpha", 2.0, "outside"),
    ("prior_half_life_s", -1.0, "outside"),
    ("overlay_alpha", -0.1, "outside"),
    ("threshold", math.nan, "finite"),
    ("qos_depth", 0, "outside"),
    ("mode", "tiles", "not one of"),
    ("qos", "best_effort", "not one of"),
    ("input_transport", "theora", "not one of"),
    ("device", "tpu", "device"),
    ("prompts", "chair", "must be a list"),
    ("prompts", [], "give at least one class name"),
    ("publish_confidence_mono8", 1, "must be a bool"),
    ("input_size", 1.5, "must be a int"),
    ("max_prompts", 0, "outside"),
    ("max_prompts", 5000, "outside"),
    ("heads_sha256", "/home/me/last.pt", "64 hexadecimal digits"),
    ("heads_sha256", "ab" * 31, "64 hexadecimal digits"),
    ("cameras", ["front", "front"], "duplicates"),
    ("cameras", ["front/left"], "not ROS name tokens"),
    ("cameras", ["2nd"], "not ROS name tokens"),
    ("cameras", [f"c{i}" for i in range(17)], "limit of 16"),
])
def test_invalid_values_are_refused_with_a_reason(name, value, fragment):
    reason = P.change_refused(name, value, "unconfigured")
    assert reason is not None and fragment in reason, reason


def test_valid_values_pass():
    for name, value in [("overlay_alpha", 1.0), ("threshold", 0.0), ("device", "cuda:1"),
                        ("device", "CPU"), ("prompts", ["a", "b"]), ("qos_depth", 100),
                        ("heads_sha256", "AB" * 32), ("heads_sha256", "")]:
        assert P.change_refused(name, value, "unconfigured") is None, (name, value)


def test_start_up_settings_change_only_while_unconfigured():
    assert P.change_refused("clip_weights", "/x.bin", "unconfigured") is None
    for state in ("inactive", "active", "configuring"):
        reason = P.change_refused("clip_weights", "/x.bin", state)
        assert f"the node is {state}" in reason and "cleanup" in reason
        # inactive needs only cleanup; the other states deactivate first
        assert ("deactivate" in reason) == (state != "inactive"), reason
        assert P.change_refused("threshold", 0.3, state) is None  # dynamic: any state
    assert P.change_refused("use_sim_time", True, "active") is None  # not ours


# ---- health -----------------------------------------------------------------------------------


def test_health_levels_follow_the_rules():
    clock = FakeClock()
    h = HealthMonitor(no_input_warn_s=lambda: 5.0, topic="/cam/image", clock=clock)
    r = h.report(publishers=0, dropped=0)
    assert r.level == OK  # just started: not yet "no input"

    clock.t += 6
    r = h.report(publishers=0, dropped=0)
    assert r.level == WARN and "no input on /cam/image" in r.message
    # a publisher that just appeared gets no_input_warn_s to send before QoS is suspected
    r = h.report(publishers=2, dropped=0, qos_desc="reliable/volatile depth 1")
    assert r.level == WARN and "waiting for its first frame" in r.message, r.message
    clock.t += 4.9
    r = h.report(publishers=2, dropped=0, qos_desc="reliable/volatile depth 1")
    assert "QoS mismatch" not in r.message
    clock.t += 0.2
    r = h.report(publishers=2, dropped=0, qos_desc="reliable/volatile depth 1")
    assert r.level == WARN and "QoS mismatch" in r.message and "reliable" in r.message
    assert "no frames for 5 s" in r.message

    h.frame_received()
    h.frame_rejected("unsupported image encoding 'weird'")
    clock.t += 1
    r = h.report(publishers=1, dropped=0)
    assert r.level == WARN and "rejected" in r.message and "weird" in r.message

    h.frame_received()
    h.frame_done(latency_ms=30.0, inference_ms=20.0)
    clock.t += 1
    r = h.report(publishers=1, dropped=3)
    assert r.level == OK
    values = dict(r.values)
    assert values["frames_dropped"] == "3" and values["latency_ms_last"] == "30.0"

    h.frame_failed("frame stamped 12.000: RuntimeError: boom")
    r = h.report(publishers=1, dropped=3)
    assert r.level == ERROR and "12.000" in r.message and "boom" in r.message
    clock.t += 1
    assert h.report(publishers=1, dropped=3).level == ERROR  # stays until a frame succeeds
    h.frame_received()
    h.frame_done(10.0, 5.0)
    assert h.report(publishers=1, dropped=3).level == OK


def test_rates_come_from_the_last_frames_whatever_the_report_period():
    clock = FakeClock()
    h = HealthMonitor(lambda: 60.0, "/image", clock=clock)
    seen = []
    for second in range(50):  # a frame every 7 s (0.14 Hz), a report every second
        if second % 7 == 0:
            h.frame_received()
            h.frame_done(latency_ms=900.0 + second, inference_ms=800.0)
        r = h.report(1, 0)
        seen.append((r.message, dict(r.values)))
        clock.t += 1.0
    late = seen[15:]  # from the third frame on, every report has a rate
    assert all(msg.startswith("segmenting at 0.1") for msg, _ in late), late[:3]
    assert all(v["output_rate_hz"] != "0.00" and v["input_rate_hz"] != "n/a" for _, v in late)
    assert seen[43][1]["latency_ms_last"] == "942.0"  # the frame at t = 42
    assert seen[43][1]["output_rate_hz"] == "0.14"
    # The stream stops: the rate falls instead of staying at its last value.
    clock.t += 60.0
    values = dict(h.report(1, 0).values)
    assert float(values["output_rate_hz"]) < 0.07


def test_first_report_before_any_frame_and_after_one():
    clock = FakeClock()
    h = HealthMonitor(lambda: 5.0, "/image", clock=clock)
    assert h.report(1, 0).message == "waiting for frames"
    h.frame_received()
    h.frame_done(10.0, 5.0)
    r = h.report(1, 0)
    assert r.message == "first frame segmented" and dict(r.values)["latency_ms_last"] == "10.0"


def test_throttle_is_per_key():
    clock = FakeClock()
    t = Throttle(5.0, clock=clock)
    assert t.ready("a") and not t.ready("a") and t.ready("b")
    clock.t += 5.0
    assert t.ready("a")


# ---- message helpers (need the message packages, not a running node) ---------------------------


def test_message_helpers():
    from ovseg_ros.core.vocabulary import VocabularySnapshot
    from ovseg_ros.frame import messages as m
    from ovseg_ros.frame.builder import builder_for
    from ovseg_ros.viz import colour_for_id

    assert m.time_of(12.25) == (12, 250_000_000)
    assert m.time_of(None) == (0, 0) and m.time_of(math.nan) == (0, 0)
    b = builder_for("kilted")
    header = b.header(*m.time_of(12.25), "cam")
    assert m.stamp_seconds(header.stamp) == 12.25
    conf = np.array([[0.0, 0.5, 1.0, 1.2]], np.float32)
    assert m.confidence_mono8(conf).tolist() == [[0, 128, 255, 255]]
    vocab = VocabularySnapshot(("cup", "table"), (3, 7), background=False, version=4)
    lm = b.deserialize(b.serialize(m.label_map_msg(b, vocab, header)), "ovseg_ros/msg/LabelMap")
    assert [(e.class_id, e.class_name) for e in lm.labels] == [(0, "unlabelled"), (3, "cup"),
                                                               (7, "table")]
    assert (lm.labels[2].r, lm.labels[2].g, lm.labels[2].b) == colour_for_id(7)
    assert lm.version == 4 and lm.background is False and lm.header.frame_id == "cam"
