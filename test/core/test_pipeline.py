"""FramePipeline keyframes: schedule, requests, vocabulary changes, decaying prior, async fusion."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers.fake_stages import WAIT, FakeStage, pipeline
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import ClipDiyConfig, ConfigError, FramePipeline, KeyframeConfig


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("pipeline"))
    s.set_prompts(["chair", "person", "table"])
    return s


@pytest.fixture
def fresh_seg(tmp_path):
    s = tiny_segmenter(tmp_path)
    s.set_prompts(["chair", "person", "table"])
    return s


IMAGE = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)






def flags(pipe, n, stamps=None):
    stamps = stamps or [float(i) for i in range(n)]
    return [pipe.process(IMAGE, s).keyframe for s in stamps[:n]]


def test_every_n_frames(seg):
    pipe = pipeline(seg, keyframe_every_n=3)
    assert flags(pipe, 8) == [True, False, False, True, False, False, True, False]
    assert pipe.keyframes_fused == 3


def test_every_t_seconds_with_fake_clock(seg):
    now = [0.0]
    pipe = pipeline(seg, clock=lambda: now[0], keyframe_every_s=1.0)
    got = []
    for t in (0.0, 0.4, 0.99, 1.0, 1.5, 2.2, 2.3, 0.5, 0.6):  # the clock jumps back at 0.5
        now[0] = t
        got.append(pipe.process(IMAGE, 100.0).keyframe)  # stamps ignored when a clock is given
    assert got == [True, False, False, True, False, True, False, True, False]


def test_every_t_seconds_from_stamps_without_clock(seg):
    pipe = pipeline(seg, keyframe_every_s=2.0)
    assert flags(pipe, 5, [10.0, 11.0, 12.0, 13.5, 14.0]) == [True, False, True, False, True]


def test_on_request(seg):
    pipe = pipeline(seg)
    assert flags(pipe, 2) == [False, False]
    assert pipe.request_keyframe() is True
    res = pipe.process(IMAGE, 7.0)
    assert res.keyframe and res.keyframe_stamp == 7.0 and res.timings["keyframe"] >= 0.0
    assert flags(pipe, 2) == [False, False]
    assert FramePipeline(seg).request_keyframe() is False  # keyframes disabled


def test_on_vocabulary_change(fresh_seg):
    stage = FakeStage()
    pipe = pipeline(fresh_seg, stage, keyframe_on_prompt_change=True)
    assert flags(pipe, 3) == [True, False, False]  # the first vocabulary counts as a change
    ids = pipe.set_prompts(["chair", "lamp"])
    res = pipe.process(IMAGE, 3.0)
    assert res.keyframe and stage.calls[-1][0] == (0, ids["chair"], ids["lamp"])
    assert flags(pipe, 2) == [False, False]


def test_prior_decays_as_documented(fresh_seg, monkeypatch):
    seen = []
    original = fresh_seg.segment

    def spy(rgb, class_prior=None):
        seen.append(class_prior)
        return original(rgb, class_prior=class_prior)

    monkeypatch.setattr(fresh_seg, "segment", spy)
    ids = fresh_seg.set_prompts(["chair", "person", "table"])
    chair, person, table = ids["chair"], ids["person"], ids["table"]
    stage = FakeStage({chair: 0.6, person: 0.02})  # table absent: 0
    pipe = pipeline(fresh_seg, stage, keyframe_every_n=100, prior_half_life_frames=4.0,
                    prior_floor=0.1)
    for i in range(7):
        pipe.process(IMAGE, float(i))
    assert seen[0] is None  # the keyframe frame itself gets fusion, not a prior
    for age in range(1, 7):
        w = 0.5 ** (age / 4.0)
        expected = {chair: 0.6 ** w, person: 0.1 ** w, table: 0.1 ** w}
        assert seen[age] == pytest.approx(expected), age
    # keyed by id: after a vocabulary change, kept ids keep theirs and new ids have none
    new = pipe.set_prompts(["table", "lamp"])
    pipe.process(IMAGE, 7.0)
    assert seen[-1][table] == pytest.approx(0.1 ** (0.5 ** (7 / 4.0)))
    assert new["lamp"] not in seen[-1]


def test_prior_half_life_in_seconds_and_switch(fresh_seg, monkeypatch):
    seen = []
    original = fresh_seg.segment
    monkeypatch.setattr(fresh_seg, "segment",
                        lambda rgb, class_prior=None: seen.append(class_prior)
                        or original(rgb, class_prior=class_prior))
    chair = fresh_seg.snapshot.as_dict()["chair"]
    now = [10.0]
    pipe = pipeline(fresh_seg, FakeStage({chair: 0.5}), clock=lambda: now[0], keyframe_every_n=50,
                    prior_half_life_s=2.0)
    for t in (10.0, 11.0, 13.0, 16.0):
        now[0] = t
        pipe.process(IMAGE, 0.0)
    assert [s[chair] for s in seen[1:]] == pytest.approx(
        [0.5 ** (0.5 ** (age / 2.0)) for age in (1.0, 3.0, 6.0)])
    seen.clear()
    off = pipeline(fresh_seg, FakeStage({chair: 0.5}), keyframe_every_n=50,
                   prior_half_life_frames=0.0)
    for i in range(3):
        off.process(IMAGE, float(i))
    assert seen == [None, None, None]


def test_keyframe_does_not_block_frames(seg):
    gate = threading.Event()
    stage = FakeStage(gate=gate)
    pipe = pipeline(seg, stage, asynchronous=True, keyframe_every_n=2)
    try:
        first = pipe.process(IMAGE, 100.0)  # starts the keyframe on this frame
        assert not first.keyframe
        assert stage.started.wait(WAIT)
        while_blocked = [pipe.process(IMAGE, 101.0 + i) for i in range(4)]
        assert [r.keyframe for r in while_blocked] == [False] * 4
        assert all(r.labels.shape == (48, 64) for r in while_blocked)
        assert pipe.keyframe_in_progress and len(stage.calls) == 1  # one at a time
        assert np.array_equal(stage.calls[0][1], IMAGE) and stage.calls[0][1] is not IMAGE
        gate.set()
        assert pipe.wait_for_keyframe(WAIT)
        fused = pipe.process(IMAGE, 200.0)
        assert fused.keyframe and fused.keyframe_stamp == 100.0
        assert fused.timings["keyframe"] > 0.0
        # the deferred schedule starts the next keyframe on that same frame
        assert pipe.wait_for_keyframe(WAIT) and len(stage.calls) == 2
        assert pipe.process(IMAGE, 201.0).keyframe_stamp == 200.0
    finally:
        gate.set()
        pipe.close()
        pipe.close()  # twice is fine


def test_async_failure_is_counted_not_raised(seg):
    stage = FakeStage(fail=True)
    pipe = pipeline(seg, stage, asynchronous=True)
    assert pipe.request_keyframe()
    pipe.process(IMAGE, 0.0)
    assert pipe.wait_for_keyframe(WAIT)
    res = pipe.process(IMAGE, 1.0)
    assert not res.keyframe and pipe.keyframe_errors == 1
    assert "boom" in pipe.last_keyframe_error
    pipe.close()


def test_stale_keyframe_dropped_after_vocabulary_change(fresh_seg):
    gate = threading.Event()
    stage = FakeStage(gate=gate)
    pipe = pipeline(fresh_seg, stage, asynchronous=True, keyframe_on_prompt_change=True)
    pipe.process(IMAGE, 0.0)
    assert stage.started.wait(WAIT)
    pipe.set_prompts(["lamp"])
    gate.set()
    assert pipe.wait_for_keyframe(WAIT)
    res = pipe.process(IMAGE, 1.0)  # old classes: not fused; the new vocabulary's keyframe starts
    assert not res.keyframe
    assert pipe.wait_for_keyframe(WAIT)
    res = pipe.process(IMAGE, 2.0)
    assert res.keyframe and res.keyframe_stamp == 1.0 and len(res.class_ids) == 2
    pipe.close()


def test_synchronous_real_clipdiy(seg):
    diy = ClipDiyConfig(image_size=(48, 64), crop_sizes=(48, 24))
    pipe = FramePipeline(seg, KeyframeConfig(keyframes=True, keyframe_every_n=2, asynchronous=False,
                                             clip_diy=diy))
    results = [pipe.process(IMAGE, float(i)) for i in range(3)]
    assert [r.keyframe for r in results] == [True, False, True]
    assert results[0].keyframe_stamp == 0.0 and results[2].keyframe_stamp == 2.0
    assert results[0].timings["keyframe"] > 0.0 and "keyframe" not in results[1].timings
    plain = seg.segment(IMAGE)
    assert not np.allclose(results[0].patch_probs, plain.patch_probs, atol=1e-3)
    # fusion weight 0: the fused frame is CLIP-DINOiser's, renormalised per patch
    zero = FramePipeline(seg, KeyframeConfig(keyframes=True, asynchronous=False,
                                             keyframe_fusion_weight=0.0,
                                             prior_half_life_frames=0.0, clip_diy=diy))
    res = zero.process(IMAGE, 0.0)
    expected = plain.patch_probs / plain.patch_probs.sum(axis=0, keepdims=True)
    assert res.keyframe and np.allclose(res.patch_probs, expected, atol=1e-5)


def test_disabled_pipeline_is_plain_segmentation(seg):
    pipe = FramePipeline(seg)
    res = pipe.process(IMAGE, 0.0)
    assert not res.keyframe and res.keyframe_stamp is None
    assert np.array_equal(res.labels, seg.segment(IMAGE).labels)
    pipe.close()


@pytest.mark.parametrize("bad, fragment", [
    (dict(keyframe_every_n=-1), "keyframe_every_n=-1 is outside [0, 1000000]"),
    (dict(keyframe_fusion_weight=1.5), "keyframe_fusion_weight=1.5 is outside [0, 1]"),
    (dict(prior_half_life_s=-1.0), "prior_half_life_s=-1.0 is outside"),
    (dict(prior_floor=0.0), "prior_floor must lie in (0, 1]"),
    (dict(keyframe_model="ViT-B-32"), "keyframe_model and keyframe_weights go together"),
    (dict(keyframe_every_s=float("nan")), "keyframe_every_s must be finite"),
])
def test_config_validation(bad, fragment):
    with pytest.raises(ConfigError) as err:
        KeyframeConfig(**bad)
    assert fragment in str(err.value)
