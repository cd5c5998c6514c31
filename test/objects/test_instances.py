"""ovseg_ros.objects.instances: the connected regions of each class present in a label image,
checked against independent readings of the output (OpenCV's components of each returned mask,
numpy's box and mean of it), at two resolutions, with and without gap closing."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from ovseg_ros.objects import CONNECTIVITY, FrameInstances, find_instances
from ovseg_ros.objects import instances as instances_module
from ovseg_ros.objects.instances import InstanceError, min_area_pixels

NAMES = {1: "cup", 2: "chair", 3: "table", 7: "door"}


def scene(h: int = 60, w: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Labels with two cups (one of them two pieces touching at a corner), a chair, a door
    made of two pieces 3 pixels apart, and a table region of 4 pixels."""
    s = h / 60
    lab = np.zeros((h, w), np.uint16)

    def put(cid, y0, y1, x0, x1):
        lab[int(y0 * s):int(y1 * s), int(x0 * s):int(x1 * s)] = cid
    put(1, 5, 15, 5, 15)
    put(1, 15, 20, 15, 20)  # touches the first cup at its corner only
    put(1, 40, 50, 60, 70)
    put(2, 30, 45, 20, 40)
    put(7, 2, 20, 50, 55)
    put(7, 2, 20, 58, 63)  # a gap of 3 (x s) columns
    lab[55:57, 2:4] = 3  # 4 pixels
    conf = np.random.default_rng(1).random((h, w), dtype=np.float32)
    return lab, conf


def check_invariants(frame: FrameInstances, labels: np.ndarray, conf: np.ndarray,
                     one_region: bool = True) -> None:
    """What every consumer relies on, read back from the instance image independently."""
    assert frame.ids.dtype == np.uint16 and frame.ids.shape == labels.shape
    assert set(np.unique(frame.ids)) <= {0} | {i.index for i in frame.instances}
    assert [i.index for i in frame.instances] == list(range(1, len(frame) + 1))
    for inst in frame.instances:
        mask = frame.ids == inst.index
        ys, xs = np.nonzero(mask)
        assert (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) == inst.box
        assert set(np.unique(labels[mask])) == {inst.class_id}, "a mask holds one class only"
        assert inst.class_id != 0
        assert inst.area == mask.sum()
        assert inst.score == pytest.approx(float(conf[mask].mean()), rel=1e-5)
        if one_region:
            n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=CONNECTIVITY)
            assert n == 2, f"instance {inst.index} is {n - 1} regions"
        box, crop = frame.crop(inst.index)
        assert box == inst.box and crop.sum() == inst.area


def test_regions_boxes_scores_and_order():
    lab, conf = scene()
    frame = find_instances(lab, conf, NAMES, min_area=0.0)
    check_invariants(frame, lab, conf)
    got = [(i.class_id, i.name, i.box, i.area) for i in frame.instances]
    assert got == [
        (1, "cup", (5, 5, 20, 20), 125),  # 8-connectivity: the corner joins the two pieces
        (1, "cup", (60, 40, 70, 50), 100),
        (2, "chair", (20, 30, 40, 45), 300),
        (3, "table", (2, 55, 4, 57), 4),
        (7, "door", (50, 2, 55, 20), 90),
        (7, "door", (58, 2, 63, 20), 90),
    ]  # by class id, then by the first pixel in raster order
    first = frame.instances[0]
    assert first.bbox_xywh == (5, 5, 15, 15) and first.center == (12.5, 12.5)


def test_four_connected_pieces_would_be_two():
    """The corner contact is what 8-connectivity joins (the documented choice)."""
    lab, _ = scene()
    n, _ = cv2.connectedComponents((lab == 1).astype(np.uint8), connectivity=4)
    assert n - 1 == 3 and CONNECTIVITY == 8


@pytest.mark.parametrize("h, w", [(60, 80), (240, 320)])
def test_min_area_is_a_fraction_of_the_image(h, w):
    """The same fraction keeps the same objects at both resolutions (the 4-pixel table at
    60x80 is 64 pixels at 240x320; 0.002 of the image is 10 and 154 pixels)."""
    lab, conf = scene(h, w)
    frame = find_instances(lab, conf, NAMES, min_area=0.002)
    assert min_area_pixels(0.002, h, w) == int(np.ceil(0.002 * h * w))
    assert "table" not in {i.name for i in frame.instances}
    assert len(frame) == 5
    check_invariants(frame, lab, conf)
    everything = find_instances(lab, conf, NAMES, min_area=0.0)
    assert {i.name for i in everything.instances} >= {"table"}


def test_background_is_never_an_instance_and_empty_labels_give_none():
    lab = np.zeros((10, 10), np.uint16)
    conf = np.ones((10, 10), np.float32)
    frame = find_instances(lab, conf, {}, min_area=0.0)
    assert len(frame) == 0 and not frame.ids.any() and frame.boxes.shape == (0, 4)


def test_gap_closing_joins_pieces_and_keeps_masks_pure():
    lab, conf = scene()
    frame = find_instances(lab, conf, NAMES, min_area=0.0, close_gaps_px=2)
    doors = [i for i in frame.instances if i.name == "door"]
    assert len(doors) == 1 and doors[0].box == (50, 2, 63, 20) and doors[0].area == 180
    mask = frame.ids == doors[0].index
    assert not mask[:, 55:58].any(), "the gap's pixels are not the door's"
    check_invariants(frame, lab, conf, one_region=False)
    assert (frame.ids > 0).sum() == (lab > 0).sum()  # closing adds no pixel
    # too small a radius leaves the doors apart
    assert len([i for i in find_instances(lab, conf, NAMES, 0.0, 1).instances
                if i.name == "door"]) == 2


def test_gap_closing_across_other_classes_stays_pure():
    """Two chairs with a person between them: closing may join the chairs into one instance,
    never give it the person's pixels."""
    lab = np.zeros((20, 30), np.uint16)
    lab[5:15, 2:10] = 2
    lab[5:15, 12:20] = 2
    lab[5:15, 10:12] = 4
    conf = np.full(lab.shape, 0.5, np.float32)
    frame = find_instances(lab, conf, {2: "chair", 4: "person"}, 0.0, close_gaps_px=2)
    chair = [i for i in frame.instances if i.name == "chair"]
    assert len(chair) == 1
    assert set(np.unique(lab[frame.ids == chair[0].index])) == {2}


def test_same_input_same_instances():
    lab, conf = scene(120, 160)
    a = find_instances(lab, conf, NAMES, 0.0, 2)
    b = find_instances(lab.copy(), conf.copy(), dict(reversed(list(NAMES.items()))), 0.0, 2)
    assert a.instances == b.instances and np.array_equal(a.ids, b.ids)
    assert a.vocabulary == b.vocabulary == ("chair", "cup", "door", "table")


def test_cost_follows_the_classes_present_not_the_vocabulary(monkeypatch):
    """Two classes present with a vocabulary of 250: two component passes, not 250."""
    calls = []
    real = cv2.connectedComponents

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(instances_module.cv2, "connectedComponents", counting)
    lab = np.zeros((48, 64), np.uint16)
    lab[4:20, 4:20] = 17
    lab[30:40, 30:60] = 240
    vocab = {i: f"name {i}" for i in range(1, 251)}
    frame = find_instances(lab, np.ones(lab.shape, np.float32), vocab, 0.0)
    assert len(calls) == 2 and [i.name for i in frame.instances] == ["name 17", "name 240"]


def test_unnamed_ids_and_uint8_labels():
    lab = np.zeros((8, 8), np.uint8)
    lab[2:4, 2:4] = 9
    frame = find_instances(lab, np.ones((8, 8), np.float32), {}, 0.0)
    assert frame.instances[0].name == "class 9"


@pytest.mark.parametrize("labels, conf, fragment", [
    (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.float32), "uint8 or uint16"),
    (np.zeros((4, 4, 1), np.uint16), np.zeros((4, 4), np.float32), "(H, W)"),
    (np.zeros((4, 4), np.uint16), np.zeros((4, 5), np.float32), "labels' shape"),
])
def test_malformed_input_is_refused_clearly(labels, conf, fragment):
    with pytest.raises(InstanceError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        find_instances(labels, conf, {})


def test_the_layer_imports_without_torch():
    code = ("import sys, ovseg_ros.objects, ovseg_ros.objects.vectors; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
