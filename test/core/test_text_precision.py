"""The text tower's dtype (core/backends/text_precision.py): the image path's precision rule
and, for auto on a CPU with more than one candidate, a cached measurement; a text dtype other
than the image tower's; the choice shown in diagnostics."""

from __future__ import annotations

import time

import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core.backends import text_precision as tp
from ovseg_ros.core.config import SegmenterConfig
from ovseg_ros.core.device import Runtime

CPU = Runtime(torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    return tiny_segmenter(tmp_path_factory.mktemp("textprec"))


def cfg(seg, **changes) -> SegmenterConfig:
    from dataclasses import replace

    return replace(seg.config, **changes)


def native(monkeypatch, bf16: bool, fp16: bool = False) -> None:
    monkeypatch.setattr(tp, "cpu_has_native_bf16", lambda: bf16)
    monkeypatch.setattr(tp, "cpu_has_native_fp16", lambda: fp16)


def choose(seg, config, tmp_path, prepare=None):
    return tp.choose_text_precision(config, CPU, seg.clip, seg.tokenizer, seg.text_cache.templates,
                                    tmp_path, prepare)


def test_an_explicit_precision_is_used_as_is(seg, tmp_path, monkeypatch):
    native(monkeypatch, bf16=True)
    for requested, got in (("fp32", "fp32"), ("bf16", "bf16"), ("int8", "fp32")):
        choice = choose(seg, cfg(seg, precision=requested), tmp_path, prepare=_never)
        assert choice.precision == got and choice.probe is None


def _never(candidate):
    raise AssertionError(f"probed {candidate.name} although nothing was to be measured")


def test_auto_without_native_reduced_precision_is_fp32_unmeasured(seg, tmp_path, monkeypatch):
    native(monkeypatch, bf16=False)
    choice = choose(seg, cfg(seg, precision="auto"), tmp_path, prepare=_never)
    assert (choice.precision, choice.reason) == ("fp32", "the only candidate allowed here")


def test_auto_probe_off_follows_the_flag_rule(seg, tmp_path, monkeypatch):
    native(monkeypatch, bf16=True)
    choice = choose(seg, cfg(seg, precision="auto", auto_probe="off"), tmp_path, _never)
    assert choice.precision == "bf16" and "flag" in choice.reason


class Costs:
    """prepare(candidate) with known costs per pass."""

    def __init__(self, seconds: dict[str, float]):
        self.seconds, self.prepared = seconds, []

    def __call__(self, candidate):
        self.prepared.append(candidate.precision)
        return lambda: time.sleep(self.seconds[candidate.precision])


def test_auto_measures_the_candidates_and_caches_the_decision(seg, tmp_path, monkeypatch):
    native(monkeypatch, bf16=True)
    config = cfg(seg, precision="auto", auto_probe="cached", auto_probe_budget_s=0.5)
    costs = Costs({"fp32": 0.06, "bf16": 0.02})
    choice = choose(seg, config, tmp_path, costs)
    assert sorted(costs.prepared) == ["bf16", "fp32"]  # the image path's candidate rule
    assert choice.precision == "bf16" and choice.probe is not None
    assert set(choice.probe.times_ms) == {"torch fp32", "torch bf16"}
    assert "fastest measured" in choice.reason
    again = choose(seg, config, tmp_path, prepare=_never)  # a later start: no measurement
    assert again.precision == "bf16" and "cached probe" in again.reason
    costs = Costs({"fp32": 0.01, "bf16": 0.05})
    measured = choose(seg, cfg(seg, precision="auto", auto_probe="always",
                               auto_probe_budget_s=0.5), tmp_path, costs)
    assert measured.precision == "fp32"


def test_the_probe_times_the_real_text_tower(seg, tmp_path, monkeypatch):
    """Both candidates run through a copy of the tower (bf16 is emulated on most CPUs and so
    measured slower there; either way the measurement decides)."""
    native(monkeypatch, bf16=True)
    choice = choose(seg, cfg(seg, precision="auto", auto_probe="always",
                             auto_probe_budget_s=0.5), tmp_path)
    assert set(choice.probe.times_ms) == {"torch fp32", "torch bf16"} and not choice.probe.failed
    best = min(choice.probe.times_ms, key=choice.probe.times_ms.get)
    assert f"torch {choice.precision}" == best
    assert seg.clip.transformer.get_cast_dtype() == torch.float32  # the model is untouched


def test_a_text_dtype_other_than_the_image_towers(tmp_path, monkeypatch):
    import ovseg_ros.core.segmenter as segmenter

    ref = tiny_segmenter(tmp_path)  # fp32 throughout
    monkeypatch.setattr(segmenter, "choose_text_precision",
                        lambda *a, **k: tp.TextChoice("bf16", "test"))
    low = tiny_segmenter(tmp_path)  # the same weights; text bf16
    assert low.runtime.dtype == torch.float32 and low.clip.visual.conv1.weight.dtype == \
        torch.float32
    assert low.text_cache.dtype == torch.bfloat16
    assert low.clip.token_embedding.weight.dtype == torch.bfloat16
    names = ["traffic cone", "ladder", "pallet"]
    cos = (low.text_cache.embed(names) * ref.text_cache.embed(names)).sum(-1)
    assert cos.min() > 0.99  # bf16 of the same weights: close, not equal
    assert low.text_cache.store.key["dtype"] == "bfloat16"
    assert low.text_cache.store.folder != ref.text_cache.store.folder  # never mixed on disk
    low.set_prompts(names)
    assert low.segment(torch.randint(0, 255, (32, 48, 3), dtype=torch.uint8).numpy()).labels.size


def test_the_choice_is_in_the_diagnostics(seg):
    from ovseg_ros.core.pipeline import FramePipeline
    from ovseg_ros.node.diagnostics import node_status

    pipe = FramePipeline(seg)
    pipe.set_prompts(["cat"])
    values = dict(node_status(pipe, "active", 1, 1, 0))
    assert values["text_precision"] == "fp32 (the precision setting)"
