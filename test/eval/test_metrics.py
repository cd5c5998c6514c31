"""Confusion-matrix scores against values computed by hand, and the paper table."""

from __future__ import annotations

import numpy as np
import pytest

from ovseg_ros.eval.metrics import confusion, from_sparse, scores, to_sparse
from ovseg_ros.eval.table import paper_table


def test_crafted_prediction_by_hand():
    # 5 classes. Pixel by pixel (gt -> pred): two ignore pixels (255), one "unlabelled" (255)
    # prediction, class 2 never predicted, class 3 predicted only on an ignore pixel (so it has
    # neither ground truth nor counted predictions), class 4 predicted but absent from the gt.
    gt = np.array([[0, 0, 0, 1, 1], [2, 2, 255, 255, 0]], dtype=np.uint8)
    pred = np.array([[0, 0, 1, 1, 255], [0, 0, 3, 1, 4]], dtype=np.uint8)
    m = confusion(gt, pred, 5)
    assert m.shape == (5, 6) and m.dtype == np.int64
    assert m.sum() == 8  # the two ignore pixels are not counted
    s = scores(m)
    # class 0: gt 4, pred 4, tp 2 -> 2/6; class 1: gt 2, pred 2, tp 1 -> 1/3; class 2: gt 2,
    # pred 0 -> 0; class 3: no gt, no pred -> excluded; class 4: pred 1, no gt -> 0.
    assert s["iou"] == pytest.approx([1 / 3, 1 / 3, 0.0, None, 0.0])
    assert s["mIoU"] == pytest.approx((1 / 3 + 1 / 3 + 0 + 0) / 4)
    assert s["aAcc"] == pytest.approx(3 / 8)
    assert s["acc"] == pytest.approx([0.5, 0.5, 0.0, None, None])
    assert s["mAcc"] == pytest.approx(1 / 3)
    assert s["unlabelled_pixels"] == 1
    assert s["gt_pixels"] == [4, 2, 2, 0, 0] and s["pred_pixels"] == [4, 2, 0, 0, 1]


def test_accumulated_not_averaged_per_image():
    a = confusion(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), 2)
    b = confusion(np.array([[0, 1]], np.uint8), np.array([[1, 1]], np.uint8), 2)
    # Over both images: class 0 gt 5, pred 4, tp 4 -> 0.8; class 1 gt 1, pred 2, tp 1 -> 0.5.
    assert scores(a + b)["mIoU"] == pytest.approx(0.65)
    # Averaging per image would give (1.0 + 0.25) / 2 = 0.625 instead.
    assert (scores(a)["mIoU"] + scores(b)["mIoU"]) / 2 == pytest.approx(0.625)


def test_empty_and_bad_inputs():
    assert scores(np.zeros((3, 4), np.int64))["mIoU"] is None
    with pytest.raises(ValueError, match="differ in size"):
        confusion(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 3)
    with pytest.raises(ValueError, match="class 7"):
        confusion(np.full((2, 2), 7, np.uint8), np.zeros((2, 2), np.uint8), 3)
    with pytest.raises(ValueError, match="C, C \\+ 1"):
        scores(np.zeros((3, 3), np.int64))


def test_sparse_round_trip_and_checks():
    rng = np.random.default_rng(0)
    m = confusion(rng.integers(0, 6, (30, 40)).astype(np.uint8),
                  rng.integers(0, 7, (30, 40)).astype(np.uint8), 6)
    assert (from_sparse(to_sparse(m), 6) == m).all()
    assert (from_sparse(to_sparse(m) + to_sparse(m), 6) == 2 * m).all()
    with pytest.raises(ValueError, match="outside"):
        from_sparse([[0, 7, 1]], 6)
    with pytest.raises(ValueError, match="outside"):
        from_sparse([[-1, 0, 1]], 6)


def _run(dataset, miou, complete=True, deviations=()):
    return {"dataset": dataset, "mIoU": miou, "complete": complete, "images": 10,
            "split_images": 10 if complete else 20, "paper_protocol": not deviations,
            "deviations": list(deviations)}


def test_paper_table_orders_columns_and_marks_runs():
    text = paper_table([_run("ade20k", 19.0), _run("voc21", 61.0, complete=False)])
    lines = text.splitlines()
    assert lines[0] == "| | VOC21 | ADE20k | mean |"
    assert lines[2] == "| ovseg_ros | 61.0* | 19.0 | 40.0* |"
    assert lines[3] == "| paper | 62.1 | 20.0 | 41.0 |"
    assert "VOC21: 10 of 20 images" in text
    full = paper_table([_run(d, 10.0) for d in ("voc21", "context60", "coco_object", "voc20",
                                                "context59", "coco_stuff", "cityscapes",
                                                "ade20k")])
    assert full.splitlines()[3].endswith("| 40.3 |")  # the paper's mean over all eight
    with pytest.raises(ValueError, match="two runs"):
        paper_table([_run("voc21", 1.0), _run("voc21", 2.0)])
