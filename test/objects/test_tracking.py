"""ovseg_ros.objects.tracking: track ids persist while an object stays in view, survive dropped
frames and occlusions up to the maximum age, are never given twice, follow class names across
a vocabulary change, and come out the same for the same frames."""

from __future__ import annotations

import numpy as np
import pytest

from ovseg_ros.objects import CameraObjects, ObjectsConfig, Tracker, find_instances

H, W = 120, 160


def frame(objects, names=None, occluder=None):
    """Instances of a label image with squares {class id: [(x, y, size), ...]} (an occluder:
    (x0, x1) columns set to background)."""
    lab = np.zeros((H, W), np.uint16)
    for cid, squares in objects.items():
        for x, y, s in squares:
            lab[y:y + s, x:x + s] = cid
    if occluder is not None:
        lab[:, occluder[0]:occluder[1]] = 0
    names = names or {1: "cup", 2: "chair"}
    return find_instances(lab, np.ones((H, W), np.float32), names, min_area=0.005)


def test_ids_persist_while_objects_move():
    tr = Tracker()
    first = tr.update(frame({1: [(10, 10, 20), (100, 60, 20)], 2: [(50, 80, 25)]}), 1.0)
    assert first.tolist() == [1, 2, 3]
    for t in range(1, 15):
        ids = tr.update(frame({1: [(10 + 3 * t, 10, 20), (100 - 2 * t, 60, 20)],
                               2: [(50, 80 - t, 25)]}), 1.0 + 0.1 * t)
        assert ids.tolist() == [1, 2, 3]


def test_a_repeated_frame_keeps_its_ids():
    tr = Tracker()
    f = frame({1: [(10, 10, 20)], 2: [(60, 60, 30)]})
    ids = [tr.update(f, 5.0 + 0.1 * k).tolist() for k in range(5)]
    assert ids == [[1, 2]] * 5


def test_dropped_frames_and_occlusion_up_to_the_age_keep_the_id():
    """A cup moving right passes behind an occluder (gone for 8 frames, 0.8 s); the stamps
    skip over dropped frames. It comes out with its id."""
    tr = Tracker(max_age_s=2.0)
    seen = []
    for t in range(40):
        if t in (5, 6, 9):  # frames the node dropped: never reach the tracker
            continue
        ids = tr.update(frame({1: [(5 + 3 * t, 40, 20)]}, occluder=(60, 100)), 0.1 * t)
        seen.append(ids.tolist())
    assert all(ids in ([], [1]) for ids in seen), seen
    assert seen.count([]) >= 8 and seen[-1] == [1]


def test_an_occlusion_longer_than_the_age_gives_a_new_id():
    tr = Tracker(max_age_s=0.5)
    out = []
    for t in range(40):
        out.append(tr.update(frame({1: [(5 + 3 * t, 40, 20)]}, occluder=(60, 100)),
                             0.1 * t).tolist())
    assert out[0] == [1] and out[-1] == [2]


def test_the_frame_limit_applies_to_unstamped_frames():
    for max_frames, want in ((10, [1]), (3, [2])):
        tr = Tracker(max_age_frames=max_frames)
        tr.update(frame({1: [(10, 10, 20)]}), None)
        tr.update(frame({1: [(10, 10, 20)]}), None)
        for _ in range(5):
            tr.update(frame({}), None)
        assert tr.update(frame({1: [(10, 10, 20)]}), 0.0).tolist() == want


def test_ids_are_never_given_twice():
    tr = Tracker(max_age_frames=0, max_age_s=0.0)
    given = []
    for t in range(30):  # objects come and go: every new one gets a new id
        objects = {1: [(10, 10, 20)]} if t % 3 else {2: [(80, 50, 20)]}
        given += tr.update(frame(objects), None).tolist()
    firsts = [g for k, g in enumerate(given) if g not in given[:k]]
    assert firsts == sorted(firsts) and len(set(given)) == len(firsts)
    assert tr.next_id == max(given) + 1


def test_classes_gate_the_matching():
    """A chair appearing exactly where a cup was is a new object."""
    tr = Tracker()
    assert tr.update(frame({1: [(30, 30, 30)]}), 1.0).tolist() == [1]
    assert tr.update(frame({2: [(30, 30, 30)]}), 1.1).tolist() == [2]


def test_a_one_frame_flicker_does_not_claim_a_returning_object():
    tr = Tracker()
    tr.update(frame({1: [(10, 10, 20)]}), 1.0)  # the cup, then hidden
    tr.update(frame({1: [(10, 10, 20)]}), 1.1)
    tr.update(frame({1: [(100, 80, 20)]}), 1.2)  # a flicker far away: a new id, once
    for t in range(3, 6):
        tr.update(frame({}), 1.0 + 0.1 * t)
    assert tr.update(frame({1: [(14, 10, 20)]}), 1.6).tolist() == [1]


def test_vocabulary_change_keeps_the_names_that_stay():
    tr = Tracker()
    before = {1: "cup", 2: "chair"}
    ids = tr.update(frame({1: [(10, 10, 20)], 2: [(80, 60, 30)]}, before), 1.0)
    assert ids.tolist() == [1, 2]
    # new vocabulary: chair keeps existing under id 5, cup is gone, "table" is new
    after = {5: "chair", 6: "table"}
    ids = tr.update(frame({5: [(80, 60, 30)], 6: [(10, 10, 20)]}, after), 1.1)
    assert ids.tolist() == [2, 3]  # chair (class 5 now) keeps 2; the table is new
    assert tr.active == [2, 3]  # the cup's track ended with its name
    back = {5: "chair", 6: "table", 7: "cup"}
    ids = tr.update(frame({7: [(10, 10, 20)]}, back), 1.2)
    assert ids.tolist() == [4]  # a cup again: a new id, 1 is never given again


def test_same_frames_same_ids():
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(30):
        objs = {1: [(int(x), int(y), 15) for x, y in rng.integers(0, 100, (3, 2))],
                2: [(int(x), int(y), 20) for x, y in rng.integers(0, 90, (2, 2))]}
        frames.append(frame(objs))
    runs = []
    for _ in range(2):
        tr = Tracker()
        runs.append([tr.update(f, 0.1 * (k + 1)).tolist() for k, f in enumerate(frames)])
    assert runs[0] == runs[1]
    assert all(len(set(ids)) == len(ids) for ids in runs[0]), "an id twice in one frame"


@pytest.mark.parametrize("masks", [True, False])
def test_crossing_objects_of_two_classes_keep_their_ids(masks):
    """A chair moving right crosses in front of a cup moving left (covering it for a while)."""
    tr = Tracker(masks=masks)
    for t in range(30):
        lab = np.zeros((H, W), np.uint16)
        lab[40:70, 130 - 4 * t:160 - 4 * t] = 1  # cup (drawn first: behind)
        lab[35:75, 4 * t:4 * t + 35] = 2  # chair in front
        names = {1: "cup", 2: "chair"}
        f = find_instances(lab, np.ones((H, W), np.float32), names, 0.005)
        ids = dict(zip((i.name for i in f.instances), tr.update(f, 0.1 * t).tolist(),
                       strict=True))
        assert ids.get("chair") == 2 and ids.get("cup", 1) == 1, (t, ids)


def test_camera_objects_follows_its_settings():
    cam = CameraObjects(ObjectsConfig(objects=True, object_min_area=0.01))
    lab = np.zeros((H, W), np.uint16)
    lab[10:20, 10:20] = 1  # 100 px: 0.52% of the image
    lab[50:80, 50:80] = 2
    got = cam.update(lab, np.ones((H, W), np.float32), {1: "cup", 2: "chair"}, 1.0)
    assert [i.name for i in got.instances.instances] == ["chair"] and got.track_ids.tolist() \
        == [1]
    cam.reconfigure(ObjectsConfig(objects=True, object_min_area=0.001))
    got = cam.update(lab, np.ones((H, W), np.float32), {1: "cup", 2: "chair"}, 1.1)
    assert [i.name for i in got.instances.instances] == ["cup", "chair"]
    assert got.track_ids.tolist() == [2, 1]
