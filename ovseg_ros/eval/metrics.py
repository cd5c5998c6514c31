"""Confusion matrices and the segmentation scores computed from them.

The matrix is accumulated over the whole split (int64 pixel counts), so mIoU is computed from
total intersections and unions per class, as mmsegmentation does, never averaged per image.
Shape (C, C + 1): rows are ground-truth classes, columns predicted classes, and the last column
counts pixels the model left unlabelled (a miss for that pixel's class). Ground-truth pixels
with the ignore index are not counted.
"""

from __future__ import annotations

import numpy as np

from .protocol import IGNORE_INDEX


def confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int,
              ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Confusion matrix (C, C + 1) int64 of one image.

    gt: (H, W) class indices 0 .. C-1 or `ignore_index`; pred: (H, W) class indices, where any
    value outside 0 .. C-1 means "no class" (the last column)."""
    if gt.shape != pred.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    valid = gt != ignore_index
    g = gt[valid].astype(np.int64)
    if g.size and int(g.max()) >= num_classes:
        raise ValueError(f"ground truth holds class {int(g.max())} of only {num_classes}")
    p = pred[valid].astype(np.int64)
    p = np.where((p >= 0) & (p < num_classes), p, num_classes)
    counts = np.bincount(g * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1))
    return counts.reshape(num_classes, num_classes + 1)


def scores(matrix: np.ndarray) -> dict:
    """mIoU, per-class IoU and accuracy, pixel accuracy from a (C, C + 1) confusion matrix.

    IoU_c = TP_c / (GT_c + Pred_c - TP_c); a class with neither ground truth nor predictions
    has no IoU (None) and is left out of the mean, like mmsegmentation's nanmean. A class that
    is predicted but absent from the ground truth has IoU 0. Values are fractions in [0, 1].
    """
    m = np.asarray(matrix, dtype=np.int64)
    c = m.shape[0]
    if m.shape != (c, c + 1):
        raise ValueError(f"expected a (C, C + 1) confusion matrix, got {m.shape}")
    tp = np.diag(m[:, :c]).astype(np.float64)
    gt = m.sum(axis=1).astype(np.float64)
    pred = m[:, :c].sum(axis=0).astype(np.float64)
    union = gt + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    total = gt.sum()
    return {
        "mIoU": _mean(iou),
        "mAcc": _mean(acc),
        "aAcc": float(tp.sum() / total) if total else None,
        "iou": [None if np.isnan(v) else float(v) for v in iou],
        "acc": [None if np.isnan(v) else float(v) for v in acc],
        "gt_pixels": [int(v) for v in gt],
        "pred_pixels": [int(v) for v in pred],
        "unlabelled_pixels": int(m[:, c].sum()),
        "pixels": int(total),
    }


def _mean(values: np.ndarray) -> float | None:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else None


def to_sparse(matrix: np.ndarray) -> list[list[int]]:
    """The non-zero cells of a confusion matrix as [row, column, count] triples."""
    rows, cols = np.nonzero(matrix)
    return [[int(r), int(k), int(matrix[r, k])] for r, k in zip(rows, cols, strict=True)]


def from_sparse(cells: list[list[int]], num_classes: int) -> np.ndarray:
    """Inverse of `to_sparse` for a (C, C + 1) matrix; repeated cells add up. Raises ValueError
    for cells outside the matrix or negative counts."""
    m = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    if not len(cells):
        return m
    a = np.asarray(cells, dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError("confusion cells must be [row, column, count] triples")
    r, k, n = a.T
    if (r < 0).any() or (r >= num_classes).any() or (k < 0).any() or (k > num_classes).any() \
            or (n < 0).any():
        raise ValueError(f"confusion cells outside a {num_classes}-class matrix")
    np.add.at(m, (r, k), n)
    return m
