"""The formats consumers read: Hydra's class + instance image (decoded with Hydra's own rule,
written out here from its InstanceImageReceiver) and COCO's results with compressed RLE masks
(decoded by pycocotools, the reference implementation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from ovseg_ros.objects import (
    HYDRA_MAX_INSTANCE,
    coco_results,
    find_instances,
    hydra_decode,
    hydra_pack,
    rle_decode,
    rle_encode,
)
from ovseg_ros.objects.coco import counts_from_string, counts_string

# pycocotools 2.0.11 under NumPy 2 warns about its own __array__ use
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def hydra_reader(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hydra's InstanceImageReceiver, pixel by pixel with C++'s integer semantics:
    labels(r, c) = original & 0xFFFF (int32); instances(r, c) = int16_t(original >> 16), an
    arithmetic shift of the int32."""
    labels = np.zeros(packed.shape, np.int64)
    instances = np.zeros(packed.shape, np.int64)
    for (r, c), value in np.ndenumerate(packed):
        original = int(np.int32(value))  # a signed 32-bit pixel
        labels[r, c] = original & 0xFFFF
        shifted = original >> 16  # Python's >> on negative ints is arithmetic, as C++20's
        instances[r, c] = ((shifted + 0x8000) & 0xFFFF) - 0x8000  # to int16_t
    return labels, instances


def scene():
    rng = np.random.default_rng(5)
    lab = np.zeros((40, 50), np.uint16)
    lab[2:10, 3:20] = 3
    lab[15:30, 5:12] = 3
    lab[12:38, 25:48] = 65535  # the largest class id fits the low 16 bits
    lab[30:35, 14:20] = 250
    lab[0, 49] = 7  # too small: a class pixel without an instance
    conf = rng.random(lab.shape, dtype=np.float32)
    names = {3: "chair", 250: "cup", 65535: "wall", 7: "speck"}
    return lab, find_instances(lab, conf, names, min_area=0.005)


def test_hydra_packing_reads_back_with_hydras_rule():
    lab, frame = scene()
    packed = hydra_pack(lab, frame.ids)
    assert packed.dtype == np.int32
    labels, instances = hydra_reader(packed)
    assert np.array_equal(labels, lab)
    assert np.array_equal(instances, frame.ids)
    ours = hydra_decode(packed)
    assert np.array_equal(ours[0], labels) and np.array_equal(ours[1], instances)
    assert instances[0, 49] == 0 and labels[0, 49] == 7


def test_hydra_packing_is_not_semantic_inferences_order():
    """semantic_inference's writer puts the class high: that image would decode wrongly."""
    lab, frame = scene()
    theirs = (lab.astype(np.int64) << 16) | frame.ids.astype(np.int64)
    assert not np.array_equal(hydra_reader(theirs.astype(np.int32))[0], lab)


def test_instances_above_hydras_int16_carry_zero():
    lab = np.full((1, 3), 5, np.uint16)
    ids = np.array([[HYDRA_MAX_INSTANCE, HYDRA_MAX_INSTANCE + 1, 65535]], np.uint16)
    labels, instances = hydra_reader(hydra_pack(lab, ids))
    assert instances.tolist() == [[HYDRA_MAX_INSTANCE, 0, 0]] and labels.tolist() == [[5] * 3]


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 50), (3, 300)])
def test_rle_matches_pycocotools(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for density in (0.0, 0.05, 0.5, 0.97, 1.0):
        mask = rng.random(shape) < density
        ours = rle_encode(mask)
        ref = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ours["counts"] == ref["counts"].decode() and ours["size"] == list(ref["size"])
        assert np.array_equal(coco_mask.decode(ours).astype(bool), mask)
        assert np.array_equal(rle_decode(ours), mask)


def test_counts_text_round_trips_large_and_negative_deltas():
    runs = [0, 1, 70000, 3, 2, 100000, 1, 5, 0]
    runs = [r for r in runs if r] or [1]
    assert counts_from_string(counts_string(runs)) == runs


def test_coco_results_decode_to_the_instances_pixels():
    lab, frame = scene()
    tracks = np.arange(101, 101 + len(frame))
    entries = json.loads(json.dumps(coco_results(frame, tracks, image_id="f.png")))
    assert len(entries) == len(frame)
    for entry, inst in zip(entries, frame.instances, strict=True):
        mask = coco_mask.decode(entry["segmentation"]).astype(bool)
        assert np.array_equal(mask, frame.ids == inst.index)
        assert entry["bbox"] == list(inst.bbox_xywh)
        assert coco_mask.toBbox(entry["segmentation"]).tolist() == entry["bbox"]
        assert entry["area"] == inst.area == int(coco_mask.area(entry["segmentation"]))
        assert entry["category"] == inst.name and entry["category_id"] == inst.class_id
        assert entry["score"] == pytest.approx(inst.score, abs=1e-6)
        assert entry["track_id"] == tracks[inst.index - 1] and entry["image_id"] == "f.png"
        assert entry["instance"] == inst.index
    assert "image_id" not in coco_results(frame)[0] and "track_id" not in coco_results(frame)[0]
