"""Several cameras (`cameras` parameter): per-camera topics, one batched inference for the
frames waiting together, keyframes on the first camera only, drops counted per camera."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from helpers.fake_stages import FakeStage, pipeline
from helpers.ros_helpers import (
    image_fields_msg,
    labels_array,
    make_picture,
    send_until,
    stamp,
    wait_for,
)
from helpers.tiny_models import tiny_segmenter

CAMS = ["front", "rear"]


# ---- FramePipeline.process_batch (no ROS) ------------------------------------------------------


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("batch"))
    s.set_prompts(["chair", "person", "table"])
    return s


def frames() -> list[tuple[np.ndarray, float]]:
    return [(make_picture(32, 48, seed=1), 1.0), (make_picture(32, 48, seed=2), 1.0),
            (make_picture(40, 24, seed=3), 1.0)]


def test_process_batch_equals_frame_by_frame_and_shares_forwards(seg, monkeypatch):
    from ovseg_ros.core import FramePipeline

    calls: list[int] = []
    real = seg.segment_batch
    monkeypatch.setattr(seg, "segment_batch", lambda imgs, p=None: calls.append(len(imgs))
                        or real(imgs, p))
    batch = FramePipeline(seg).process_batch(frames())
    assert calls == [3]  # one call; the two 32x48 frames share a forward inside it
    for (rgb, _), res in zip(frames(), batch, strict=True):
        alone = seg.segment(rgb)
        assert res.labels.shape == rgb.shape[:2]
        assert np.array_equal(res.labels, alone.labels)
        np.testing.assert_allclose(res.confidence, alone.confidence, atol=1e-5)


def test_keyframes_and_prior_follow_the_primary_frame_only(seg):
    stage = FakeStage({1: 0.9})  # chair present, the rest absent: a strong prior
    pipe = pipeline(seg, stage, keyframe_every_n=3, prior_half_life_frames=10.0)
    first = pipe.process_batch(frames(), primary=1)
    assert [r.keyframe for r in first] == [False, True, False]
    assert len(stage.calls) == 1 and np.array_equal(stage.calls[0][1], frames()[1][0])
    second = pipe.process_batch(frames(), primary=1)  # the prior is active now
    assert [r.keyframe for r in second] == [False, False, False]
    for i in (0, 2):  # the other cameras never see the primary camera's prior
        assert np.array_equal(second[i].confidence, seg.segment(frames()[i][0]).confidence)
    prior = seg.segment(frames()[1][0], class_prior=pipe.prior_factors(1, 1.0))
    np.testing.assert_allclose(second[1].confidence, prior.confidence, atol=1e-6)
    assert not np.allclose(second[1].confidence, seg.segment(frames()[1][0]).confidence)
    none = pipe.process_batch(frames(), primary=None)  # primary camera absent: no schedule
    assert not any(r.keyframe for r in none) and len(stage.calls) == 1
    assert [r.keyframe for r in pipe.process_batch(frames(), primary=0)] == [False] * 3
    assert [r.keyframe for r in pipe.process_batch(frames(), primary=0)] == [True, False, False]


# ---- the node with cameras ---------------------------------------------------------------------


@contextmanager
def held(node) -> Iterator[threading.Event]:
    """Block the worker inside its current call until released, so frames wait in slots."""
    gate, inside = threading.Event(), threading.Event()
    real = node.worker._handler

    def handler(batch):
        inside.set()
        gate.wait(20.0)
        node.worker._handler = real
        return real(batch)

    node.worker._handler = handler
    try:
        yield inside
    finally:
        gate.set()


def test_cameras_have_their_own_topics_and_share_one_batch(ros, seg_node):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from ovseg_ros.msg import LabelMap, Segmentation
    from ovseg_ros.node import qos as Q

    node, ns = seg_node(cameras=CAMS)
    assert [c.input_topic for c in node.cameras] == [f"{ns}/front/image", f"{ns}/rear/image"]
    topics = dict(node.get_topic_names_and_types())
    for cam in CAMS:
        for out in ("labels", "confidence", "overlay", "segmentation"):
            assert f"{ns}/ovseg/{cam}/{out}" in topics
    assert f"{ns}/ovseg/label_map" in topics and f"{ns}/ovseg/labels" not in topics
    labels = {c: ros.collect(Image, f"{ns}/ovseg/{c}/labels") for c in CAMS}
    segs = {c: ros.collect(Segmentation, f"{ns}/ovseg/{c}/segmentation") for c in CAMS}
    maps = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    pubs = {c: ros.helper.create_publisher(Image, f"{ns}/{c}/image", Q.reliable(5))
            for c in CAMS}
    sizes = {"front": (32, 48), "rear": (40, 24)}
    batches: list[int] = []
    real = node.pipeline.process_batch
    node.pipeline.process_batch = lambda fr, primary=0: batches.append(len(fr)) or real(
        fr, primary)

    assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()))
    with held(node) as inside:
        pubs["front"].publish(image_fields_msg(make_picture(*sizes["front"]), stamp=stamp(5)))
        assert inside.wait(60.0)
        for sec in (6, 7, 8):  # front: 2 of these 3 are replaced in its slot (dropped)
            pubs["front"].publish(image_fields_msg(make_picture(*sizes["front"], seed=sec),
                                                   stamp=stamp(sec), frame_id="front_cam"))
            assert wait_for(lambda sec=sec: node.health.received == sec - 4)
        pubs["rear"].publish(image_fields_msg(make_picture(*sizes["rear"]), stamp=stamp(9),
                                              frame_id="rear_cam"))
        assert wait_for(lambda: node.worker.stats().pending_items == 2)
    assert wait_for(lambda: segs["rear"].count >= 1 and segs["front"].count >= 2)
    # process() of the lone first frame goes through process_batch too, with one frame.
    assert batches == [1, 2]  # then front's newest and rear's frame: one batched inference
    assert [m.header.stamp.sec for m in segs["front"].snapshot()] == [5, 8]
    for cam, sec in (("front", 8), ("rear", 9)):
        lab = labels[cam].last()
        assert (lab.height, lab.width) == sizes[cam] and lab.header.stamp.sec == sec
        assert lab.header.frame_id == f"{cam}_cam"
        assert set(np.unique(labels_array(lab)).tolist()) <= {0, 1, 2, 3}
    assert segs["front"].last().frames_dropped == 2 and segs["rear"].last().frames_dropped == 0
    assert maps.count >= 1 and maps.last().version == 1  # shared, once

    def dropped_in_diagnostics() -> dict[str, str]:
        out = {}
        for arr in diags.snapshot():
            for s in arr.status:
                if s.name.startswith(f"{ns[1:]}/ovseg: segmentation "):
                    out[s.name.rsplit(" ", 1)[1]] = {v.key: v.value for v in s.values}
        return {k: v["frames_dropped"] for k, v in out.items()}

    assert wait_for(lambda: dropped_in_diagnostics() == {"front": "2", "rear": "0"})


def test_batch_failure_is_reported_for_each_camera_and_the_next_batch_served(ros, seg_node):
    from sensor_msgs.msg import Image

    from ovseg_ros.msg import Segmentation
    from ovseg_ros.node import qos as Q

    node, ns = seg_node(cameras=CAMS)
    real, fail = node.pipeline.process_batch, threading.Event()
    fail.set()

    def flaky(fr, primary=0):
        if fail.is_set() and len(fr) > 1:
            raise RuntimeError("simulated batch failure")
        return real(fr, primary)

    node.pipeline.process_batch = flaky
    segs = {c: ros.collect(Segmentation, f"{ns}/ovseg/{c}/segmentation") for c in CAMS}
    pubs = {c: ros.helper.create_publisher(Image, f"{ns}/{c}/image", Q.reliable(5))
            for c in CAMS}
    assert wait_for(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()))
    with held(node) as inside:
        pubs["front"].publish(image_fields_msg(make_picture(20, 30), stamp=stamp(1)))
        assert inside.wait(60.0)
        for cam in CAMS:
            pubs[cam].publish(image_fields_msg(make_picture(20, 30), stamp=stamp(2)))
        assert wait_for(lambda: node.worker.stats().pending_items == 2)
    assert wait_for(lambda: all(c.health.failed == 1 for c in node.cameras))
    assert "simulated batch failure" in node.cameras[1].health._error
    fail.clear()
    for cam in CAMS:
        assert send_until(pubs[cam], lambda: image_fields_msg(make_picture(20, 30),
                                                              stamp=stamp(3)),
                          lambda cam=cam: any(m.header.stamp.sec == 3
                                              for m in segs[cam].snapshot()))


def test_keyframes_follow_the_first_camera(ros, seg_node):
    from sensor_msgs.msg import Image

    from ovseg_ros.msg import Segmentation
    from ovseg_ros.node import qos as Q

    node, ns = seg_node(cameras=CAMS, keyframe_every_n=2, keyframe_on_prompt_change=False)
    node.pipeline.stage = FakeStage({1: 0.9})  # CLIP-DIY's role, without its cost
    segs = {c: ros.collect(Segmentation, f"{ns}/ovseg/{c}/segmentation") for c in CAMS}
    pubs = {c: ros.helper.create_publisher(Image, f"{ns}/{c}/image", Q.reliable(5))
            for c in CAMS}
    sec = iter(range(10, 10_000))

    def both():
        s = stamp(next(sec))
        for cam in CAMS:
            pubs[cam].publish(image_fields_msg(make_picture(20, 30), stamp=s))
        return image_fields_msg(make_picture(20, 30), stamp=s)

    assert send_until(pubs["rear"], both, lambda: sum(m.keyframe for m in
                                                      segs["front"].snapshot()) >= 2)
    assert segs["rear"].count >= 2 and not any(m.keyframe for m in segs["rear"].snapshot())
    started, n = node.pipeline.keyframes_started, segs["rear"].count
    for _ in range(6):  # the rear camera alone: its frames never run the keyframe schedule
        msg = image_fields_msg(make_picture(20, 30), stamp=stamp(next(sec)))
        assert send_until(pubs["rear"], lambda msg=msg: msg,
                          lambda n=n: segs["rear"].count > n)
        n = segs["rear"].count
    assert node.pipeline.keyframes_started == started
    assert not any(m.keyframe for m in segs["rear"].snapshot())
    compressed, _ = seg_node(cameras=["left"], input_transport="compressed")
    assert compressed.cameras[0].input_topic.endswith("/left/image/compressed")
