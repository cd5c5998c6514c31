"""Node building blocks without a running node: parameters, health rules, message helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ovseg_ros.node import params as P
from ovseg_ros.node.diagnostics import ERROR, OK, WARN, HealthMonitor, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ---- parameters -------------------------------------------------------------------------------


def test_every_parameter_is_documented_and_ranged_consistently():
    names = [p.name for p in P.PARAMS]
    assert len(names) == len(set(names))
    for p in P.PARAMS:
        assert len(p.description) > 20, p.name
        assert P.validate(p.name, p.default) is None, p.name  # defaults are valid
        if p.read_only:
            assert "restart" in p.description
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            assert p.low is not None, f"{p.name} is numeric but has no range"
    dynamic = {p.name for p in P.PARAMS if not p.read_only}
    assert {"prompts", "threshold", "overlay_alpha"} <= dynamic


def test_parameter_defaults_match_the_core():
    from ovseg_ros.core import SegmenterConfig

    cfg = SegmenterConfig()
    for name in ("model", "clip_weights", "heads", "device", "precision", "mode", "input_size",
                 "background", "threshold", "max_prompts"):
        assert P.SPECS[name].default == getattr(cfg, name), name


def test_keyframe_parameters_map_onto_the_core_config():
    from ovseg_ros.node.build import keyframe_config

    values = {p.name: p.default for p in P.PARAMS}
    cfg = keyframe_config(values)
    assert not cfg.enabled and cfg.asynchronous  # no schedule, no keyframes: nothing loaded
    assert (cfg.prior, cfg.prior_half_life, cfg.prior_half_life_unit) == (
        True, values["prior_half_life_frames"], "frames")
    cfg = keyframe_config({**values, "keyframe_every_n": 15, "prior_half_life_s": 2.5})
    assert cfg.enabled and cfg.every_n_frames == 15
    assert (cfg.prior, cfg.prior_half_life, cfg.prior_half_life_unit) == (True, 2.5, "seconds")
    cfg = keyframe_config({**values, "keyframes": True, "prior_half_life_frames": 0.0})
    assert cfg.enabled and not cfg.prior
    cfg.validate()


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
    ("publish_confidence_mono8", 1, "must be a bool"),
    ("input_size", 1.5, "must be a int"),
    ("max_prompts", 0, "outside"),
    ("max_prompts", 5000, "outside"),
    ("cameras", ["front", "front"], "duplicates"),
    ("cameras", ["front/left"], "not ROS name tokens"),
    ("cameras", ["2nd"], "not ROS name tokens"),
    ("cameras", [f"c{i}" for i in range(17)], "limit of 16"),
    ("nonsense", 1, "unknown parameter"),
])
def test_invalid_values_are_refused_with_a_reason(name, value, fragment):
    reason = P.validate(name, value)
    assert reason is not None and fragment in reason


def test_valid_values_pass():
    for name, value in [("overlay_alpha", 1.0), ("threshold", 0), ("device", "cuda:1"),
                        ("device", "CPU"), ("prompts", ["a", "b"]), ("qos_depth", 100)]:
        assert P.validate(name, value) is None, (name, value)


# ---- health -----------------------------------------------------------------------------------


def test_health_levels_follow_the_rules():
    clock = FakeClock()
    h = HealthMonitor(no_input_warn_s=5.0, topic="/cam/image", clock=clock)
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
    assert values["frames_dropped"] == "3" and values["latency_ms_mean"] == "30.0"

    h.frame_failed("frame stamped 12.000: RuntimeError: boom")
    r = h.report(publishers=1, dropped=3)
    assert r.level == ERROR and "12.000" in r.message and "boom" in r.message
    clock.t += 1
    assert h.report(publishers=1, dropped=3).level == ERROR  # stays until a frame succeeds
    h.frame_received()
    h.frame_done(10.0, 5.0)
    assert h.report(publishers=1, dropped=3).level == OK


def test_rates_are_per_report_period():
    clock = FakeClock()
    h = HealthMonitor(5.0, "/image", clock=clock)
    for _ in range(10):
        h.frame_received()
    for _ in range(4):
        h.frame_done(1.0, 1.0)
    clock.t += 2.0
    values = dict(h.report(1, 6).values)
    assert values["input_rate_hz"] == "5.00" and values["output_rate_hz"] == "2.00"
    clock.t += 1.0
    values = dict(h.report(1, 6).values)
    assert values["input_rate_hz"] == "0.00" and values["latency_ms_mean"] == "n/a"


def test_throttle_is_per_key():
    clock = FakeClock()
    t = Throttle(5.0, clock=clock)
    assert t.ready("a") and not t.ready("a") and t.ready("b")
    clock.t += 5.0
    assert t.ready("a")


# ---- message helpers (need the message packages, not a running node) ---------------------------


def test_message_helpers():
    pytest.importorskip("rclpy")
    from ovseg_ros.node import messages as m
    from ovseg_ros.viz import colour_for_id

    t = m.seconds_to_time(12.25)
    assert (t.sec, t.nanosec) == (12, 250_000_000)
    assert m.seconds_to_time(None).sec == 0 and m.seconds_to_time(math.nan).sec == 0
    assert m.stamp_seconds(t) == 12.25
    conf = np.array([[0.0, 0.5, 1.0, 1.2]], np.float32)
    assert m.confidence_mono8(conf).tolist() == [[0, 128, 255, 255]]
    lm = m.label_map_msg(["cup", "table"], [3, 7], background=False, version=4, stamp=t)
    assert [(e.class_id, e.class_name) for e in lm.labels] == [(0, "unlabelled"), (3, "cup"),
                                                               (7, "table")]
    assert (lm.labels[2].r, lm.labels[2].g, lm.labels[2].b) == colour_for_id(7)
    assert lm.version == 4 and lm.background is False
