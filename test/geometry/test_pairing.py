"""ovseg_ros.geometry.DepthPairing: stamp pairing of colour and depth, misses and statistics."""

from __future__ import annotations

import threading

import pytest

from ovseg_ros.geometry import DepthPairing, Miss, MissReason, Paired

CAM = "camera_color_optical_frame"


def ready(slop=0.05, history=4) -> DepthPairing:
    p = DepthPairing(slop_s=slop, history=history)
    p.add_info(0.0, CAM, "intrinsics")  # published once: still pairs later frames
    return p


def test_exact_stamp_pairs_with_offset_zero():
    p = ready()
    p.add_depth(10.0, CAM, "d10")
    p.add_depth(10.1, CAM, "d11")
    got = p.match(10.0, CAM)
    assert got == Paired("d10", "intrinsics", 0.0)


def test_nearest_depth_within_slop_wins():
    p = ready()
    for t in (9.90, 9.97, 10.02, 10.09):
        p.add_depth(t, CAM, f"d{t}")
    got = p.match(10.0, CAM)
    assert isinstance(got, Paired) and got.depth == "d10.02"
    assert got.offset_s == pytest.approx(0.02)


def test_depth_arriving_after_the_colour_frame_fills_the_open_request():
    p = ready()
    p.add_depth(9.80, CAM, "old")
    req = p.open(10.0, CAM)  # colour arrives first (the usual driver order)
    p.add_depth(10.001, CAM, "late")
    p.add_depth(10.2, CAM, "next")  # newer but further: does not replace the match
    got = p.close(req)
    assert isinstance(got, Paired) and got.depth == "late"


def test_history_is_bounded_and_old_depth_is_forgotten():
    p = ready(history=3)
    for i in range(1000):
        p.add_depth(float(i), CAM, bytearray(10))
    assert len(p._depth) == 3
    assert isinstance(p.match(997.0, CAM), Paired)
    miss = p.match(5.0, CAM)
    assert isinstance(miss, Miss) and miss.reason is MissReason.STAMP_OFFSET


def test_open_requests_are_bounded_and_a_dropped_frame_costs_nothing():
    p = ready(history=2)
    reqs = [p.open(float(i), CAM) for i in range(50)]  # frames dropped by the slot, never closed
    assert len(p._open) == 2
    p.add_depth(0.0, CAM, "zero")  # the first request fell out: no longer updated
    got = p.close(reqs[0])
    assert isinstance(got, Miss) and got.reason is MissReason.NO_DEPTH
    assert p.stats().frames == 1  # only closed frames count


def test_never_pairing_reports_the_typical_offset():
    p = ready(slop=0.01)
    for i in range(20):
        t = 100.0 + i / 10
        p.add_depth(t + 0.033, CAM, i)  # depth always 33 ms after colour
        miss = p.match(t, CAM)
        assert isinstance(miss, Miss) and miss.reason is MissReason.STAMP_OFFSET
        assert miss.offset_s == pytest.approx(0.033, abs=1e-6)
    s = p.stats()
    assert s.frames == 20 and s.paired == 0 and s.rate == 0.0
    assert s.misses == {"stamp_offset": 20}
    assert s.typical_offset_s == pytest.approx(0.033, abs=1e-6)
    assert "+0.033 s" in s.last_miss and "depth_slop_s=0.01" in s.last_miss
    values = dict(s.values())
    assert values["depth_typical_stamp_offset_s"] == "0.0330"
    assert values["depth_miss_stamp_offset"] == "20" and values["depth_pairing_rate"] == "0.000"


def test_no_depth_yet():
    p = ready()
    miss = p.match(1.0, CAM)
    assert miss.reason is MissReason.NO_DEPTH and "'depth' remap" in miss.message


def test_no_camera_info_yet_and_the_last_refusal_is_named():
    p = DepthPairing()
    p.add_depth(1.0, CAM, "d")
    miss = p.match(1.0, CAM)
    assert miss.reason is MissReason.NO_CAMERA_INFO and miss.offset_s == 0.0
    p.refuse_info("camera_info has focal lengths fx=0, fy=0")
    miss = p.match(1.0, CAM)
    assert miss.reason is MissReason.NO_CAMERA_INFO and "fx=0" in miss.message
    p.add_info(1.0, CAM, "good")
    assert p.match(1.0, CAM) == Paired("d", "good", 0.0)


def test_camera_info_is_the_one_nearest_the_colour_stamp():
    # a mixed-size replay: each frame has its own intrinsics, and the worker lags behind
    p = DepthPairing()
    for t in (1.0, 2.0, 3.0):
        p.add_depth(t, CAM, f"d{t:g}")
        p.add_info(t, CAM, f"i{t:g}")
    assert p.match(1.0, CAM) == Paired("d1", "i1", 0.0)
    assert p.match(2.0, CAM) == Paired("d2", "i2", 0.0)


def test_camera_info_after_the_colour_frame_still_counts():
    p = DepthPairing()
    p.add_info(4.0, CAM, "i4")
    req = p.open(5.0, CAM)
    p.add_depth(5.0, CAM, "d5")
    p.add_info(5.0, CAM, "i5")
    p.add_info(6.0, CAM, "i6")
    assert p.close(req) == Paired("d5", "i5", 0.0)


def test_a_request_that_fell_out_of_the_open_list_still_finds_its_camera_info():
    p = DepthPairing(history=2)
    req = p.open(1.0, CAM)
    p.add_depth(1.0, CAM, "d1")
    p.open(1.5, CAM)
    p.open(2.0, CAM)  # req fell out of the open list, with its depth already offered
    p.add_info(1.0, CAM, "i1")  # arrives after: offered to the open requests only
    assert p.close(req) == Paired("d1", "i1", 0.0)


def test_the_nearest_camera_info_decides_the_frame_check():
    p = DepthPairing()
    p.add_info(1.0, CAM, "mine")
    p.add_info(2.0, "ir_optical_frame", "foreign")
    p.add_depth(2.0, CAM, "d")
    miss = p.match(2.0, CAM)
    assert miss.reason is MissReason.FRAME_ID and "'ir_optical_frame'" in miss.message
    assert p.match(1.0, CAM).reason is MissReason.STAMP_OFFSET  # its info is right, depth 1 s off


def test_depth_in_another_frame_is_refused_naming_the_register_node():
    p = ready()
    p.add_depth(1.0, "camera_depth_optical_frame", "d")
    miss = p.match(1.0, CAM)
    assert miss.reason is MissReason.FRAME_ID
    assert "camera_depth_optical_frame" in miss.message
    assert "depth_image_proc's register node" in miss.message


def test_camera_info_in_another_frame_is_refused():
    p = DepthPairing()
    p.add_info(1.0, "camera_depth_optical_frame", "depth intrinsics")
    p.add_depth(1.0, CAM, "d")
    miss = p.match(1.0, CAM)
    assert miss.reason is MissReason.FRAME_ID and "camera_info frame_id" in miss.message
    assert "register" in miss.message


def test_statistics_count_every_reason():
    p = DepthPairing(slop_s=0.0)
    p.match(1.0, CAM)  # no depth
    p.add_depth(2.0, CAM, "d")
    p.match(2.0, CAM)  # no info
    p.add_info(2.0, CAM, "i")
    p.match(2.0, CAM)  # paired, exact
    p.match(2.5, CAM)  # offset
    p.add_depth(3.0, "other", "d")
    p.match(3.0, CAM)  # nearest own-frame depth is 1 s away: stamp offset
    s = p.stats()
    assert s.frames == 5 and s.paired == 1 and s.rate == pytest.approx(0.2)
    assert s.misses == {"no_depth": 1, "no_camera_info": 1, "stamp_offset": 2}


def test_invalid_settings_are_refused():
    for kwargs in ({"slop_s": -0.1}, {"slop_s": float("nan")}, {"history": 0}):
        with pytest.raises(ValueError):
            DepthPairing(**kwargs)


def test_closing_twice_is_an_error():
    p = ready()
    req = p.open(1.0, CAM)
    p.close(req)
    with pytest.raises(ValueError, match="closed already"):
        p.close(req)


def test_concurrent_producers_and_consumer():
    p = ready(slop=0.004)
    n = 2000
    results = []

    def depth():
        for i in range(n):
            p.add_depth(i * 0.01 + 0.001, CAM, i)

    def colour():
        for i in range(n):
            req = p.open(i * 0.01, CAM)
            p.add_info(i * 0.01, CAM, "i")
            results.append(p.close(req))

    threads = [threading.Thread(target=depth), threading.Thread(target=colour)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = p.stats()
    assert s.frames == n == len(results)
    assert s.paired + sum(s.misses.values()) == n
    for r in results:  # whatever the interleaving, a pair is always the right depth
        if isinstance(r, Paired):
            assert r.offset_s == pytest.approx(0.001)
