"""`backend: auto` / `precision: auto` by measurement (core/backends/probe.py): the probe picks the
fastest candidate, keeps to its budget, survives candidates that fail, and its decision is
cached, keyed and invalidated. Fake candidates with known costs run on a fake clock, so none of
this depends on the CPU the tests run on; one test runs the real probe on the tiny model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core.backends import BackendError, probe
from ovseg_ros.core.backends.probe import Candidate

TF, TB, OF, OI = (Candidate("torch", "fp32"), Candidate("torch", "bf16"),
                  Candidate("onnxruntime", "fp32"), Candidate("onnxruntime", "int8"))


class Fake:
    """prepare(candidate) for the probe: forwards that cost `costs[name]` seconds of a fake clock;
    a cost that is an exception class is raised instead (at prepare when `at_prepare`)."""

    def __init__(self, costs, at_prepare=()):
        self.costs, self.at_prepare = costs, set(at_prepare)
        self.now = 0.0
        self.prepared: list[str] = []
        self.passes: list[str] = []

    def clock(self) -> float:
        return self.now

    def __call__(self, c: Candidate):
        self.prepared.append(c.name)
        self.now += 100.0  # an export: never counted in the budget
        cost = self.costs[c.name]
        if c.name in self.at_prepare:
            raise cost(f"{c.name} is not installed")

        def forward():
            self.passes.append(c.name)
            if isinstance(cost, type):
                raise cost("crashed")
            self.now += cost
        return forward


def test_candidates_follow_the_request_not_the_cpu():
    flags = dict(onnx=True, native_bf16=True, native_fp16=False, int8=False)
    assert probe.candidates("auto", "auto", **flags) == [TF, OF, TB]
    assert probe.candidates("auto", "auto", **{**flags, "int8": True}) == [TF, OF, TB, OI]
    assert probe.candidates("auto", "auto", **{**flags, "onnx": False}) == [TF, TB]
    assert probe.candidates("auto", "fp32", **flags) == [TF, OF]
    assert probe.candidates("torch", "auto", **{**flags, "native_bf16": False}) == [TF]
    assert probe.candidates("auto", "bf16", **flags) == [TB]  # nothing to measure
    assert probe.candidates("onnxruntime", "auto", **{**flags, "int8": True}) == [OF, OI]


def test_picks_the_fastest_and_interleaves_rounds():
    fake = Fake({TF.name: 0.8, OF.name: 0.9, TB.name: 1.2})
    result = probe.measure([TF, OF, TB], fake, budget_s=100.0, reps=3, clock=fake.clock)
    assert result.choice == TF and not result.cached
    assert result.times_ms == pytest.approx({TF.name: 800, OF.name: 900, TB.name: 1200})
    # warm-up and a timed pass each, then 2 more interleaved rounds
    assert fake.passes == [TF.name] * 2 + [OF.name] * 2 + [TB.name] * 2 + [TF.name, OF.name,
                                                                          TB.name] * 2
    assert "torch fp32: fastest measured, 800 ms, 1.12x faster than onnxruntime fp32" \
        in result.reason
    assert result.table().splitlines()[0].strip().startswith("torch fp32")


def test_budget_bounds_the_extra_rounds_and_excludes_preparation():
    fake = Fake({TF.name: 1.0, TB.name: 0.5})
    result = probe.measure([TF, TB], fake, budget_s=4.0, reps=10, clock=fake.clock)
    # warm-up + one timed pass each (3.0 s), then torch fp32 fits once more (4.0 s): no more
    assert result.probe_s == pytest.approx(4.0) and result.probe_s <= 4.0
    assert fake.passes == [TF.name, TF.name, TB.name, TB.name, TF.name]
    assert result.choice == TB and result.passes == {TF.name: 3, TB.name: 2}
    # a budget below two passes per candidate: exactly those two, so each is timed warm
    fake = Fake({TF.name: 2.0, TB.name: 0.5})
    result = probe.measure([TF, TB], fake, budget_s=1.0, reps=3, clock=fake.clock)
    assert fake.passes == [TF.name, TF.name, TB.name, TB.name] and result.choice == TB
    assert result.probe_s == pytest.approx(5.0)


@pytest.mark.parametrize("where", ["prepare", "pass"])
def test_a_failing_candidate_is_skipped_with_one_warning(caplog, where):
    costs = {TF.name: 1.0, OF.name: BackendError if where == "prepare" else RuntimeError,
             TB.name: 0.7}
    fake = Fake(costs, at_prepare=[OF.name] if where == "prepare" else [])
    with caplog.at_level(logging.WARNING, logger=probe.__name__):
        result = probe.measure([TF, OF, TB], fake, budget_s=100.0, clock=fake.clock)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and OF.name in warnings[0]
    assert result.choice == TB and OF.name in result.failed and OF.name not in result.times_ms
    assert fake.passes.count(OF.name) == (0 if where == "prepare" else 1)  # never retried
    nothing = Fake({TF.name: RuntimeError})
    assert probe.measure([TF], nothing, budget_s=10.0, clock=nothing.clock) is None


def _key(**changes):
    key = probe.probe_key("ViT-B-16", (448, 448), 2, [TF, OF], {"torch": "2.x"})
    return {**key, **changes}


def test_decision_is_cached_keyed_and_invalidated(tmp_path, caplog):
    costs = {TF.name: 0.5, OF.name: 0.3}
    fake = Fake(costs)
    first = probe.decide([TF, OF], fake, _key(), tmp_path, budget_s=10.0, clock=fake.clock)
    assert first.choice == OF and fake.prepared == [TF.name, OF.name]
    assert len(list(tmp_path.glob("auto-*.json"))) == 1
    # used: the next start reads the decision and runs nothing
    again = Fake(costs)
    cached = probe.decide([TF, OF], again, _key(), tmp_path, clock=again.clock)
    assert again.prepared == [] and cached.cached and cached.choice == OF
    assert "cached probe of" in cached.reason
    # keyed: other threads (or CPU, versions, input size) measure again, in their own entry
    other = Fake({TF.name: 0.2, OF.name: 0.3})
    third = probe.decide([TF, OF], other, _key(threads=1), tmp_path, clock=other.clock)
    assert other.prepared and third.choice == TF
    assert len(list(tmp_path.glob("auto-*.json"))) == 2
    # invalidated on request: mode "always" measures and overwrites
    forced = Fake({TF.name: 0.2, OF.name: 0.3})
    assert probe.decide([TF, OF], forced, _key(), tmp_path, "always",
                        clock=forced.clock).choice == TF
    assert forced.prepared and probe.load(tmp_path, _key()).choice == TF
    # a damaged entry is ignored with a warning and measured again
    for path in tmp_path.glob("auto-*.json"):
        path.write_text("{not json")
    fresh = Fake(costs)
    with caplog.at_level(logging.WARNING, logger=probe.__name__):
        assert probe.decide([TF, OF], fresh, _key(), tmp_path, clock=fresh.clock).choice == OF
    assert fresh.prepared and "unreadable probe cache" in caplog.text
    assert probe.load(tmp_path, _key()).choice == OF  # rewritten whole


def test_key_names_the_machine_threads_versions_and_size():
    key = _key()
    for field in ("cpu_model", "cpu_flags", "cpu_count", "cpus_usable", "threads", "versions",
                  "model", "input_hw", "candidates"):
        assert field in key, field
    assert probe.probe_key("m", (224, 224), 2, [TF, OF], {}) != probe.probe_key(
        "m", (448, 448), 2, [TF, OF], {})
    # VMs name Zen 4 and Zen 5 both "AMD EPYC": the family and model number tell them apart
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    for field in ("cpu family", "model", "stepping", "CPU part"):
        if f"\n{field}\t" in info or info.startswith(f"{field}\t"):
            assert f"{field} " in key["cpu_model"], (field, key["cpu_model"])


@pytest.mark.slow
def test_segmenter_measures_once_then_reuses_and_can_be_told_not_to(tmp_path):
    """The real probe on the tiny model: torch fp32 against onnxruntime fp32 (its export
    happens once, outside the budget); the fastest on this CPU is whichever it is."""
    seg = tiny_segmenter(tmp_path, backend="auto", precision="fp32", input_size=64,
                         auto_probe_budget_s=2.0)
    assert seg.probe is not None and not seg.probe.cached
    assert set(seg.probe.times_ms) == {TF.name, OF.name}
    assert seg.runtime.backend == seg.probe.choice.backend
    assert "probed now" in seg.runtime.reason
    entries = list((tmp_path / "cache" / "probe").glob("auto-*.json"))
    assert len(entries) == 1
    again = tiny_segmenter(tmp_path, backend="auto", precision="fp32", input_size=64)
    assert again.probe.cached and again.runtime.backend == seg.runtime.backend
    assert "cached probe" in again.runtime.reason
    off = tiny_segmenter(tmp_path, backend="auto", precision="fp32", input_size=64,
                         auto_probe="off")
    assert off.probe is None and "auto_probe off" in off.runtime.reason


@pytest.mark.parametrize("spin, policy, want", [(False, "", "0"), (True, "", "1"),
                                                 (True, "PASSIVE", "0")])
def test_onnx_spinning_follows_the_setting_and_omp_passive(tmp_path, monkeypatch, spin, policy,
                                                           want):
    from onnx import TensorProto, helper

    from ovseg_ros.core.backends.onnx_encoder import ort_session

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "relu.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                     .SerializeToString())
    monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    options = ort_session(path, 1, spin).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == want
