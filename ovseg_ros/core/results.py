"""Turning class probabilities into what users consume: label ids, confidence, per-class stats."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .features import FrameFeatures
from .transfer import download, label_dtype
from .vocabulary import VocabularySnapshot


@dataclass(frozen=True)
class ClassStat:
    """Per-class summary of one image.

    pixel_fraction: share of the image's pixels labelled with this class.
    mean_confidence: mean per-pixel confidence over those pixels (0 when there are none).
    presence: image-level presence score, the class's highest patch probability.
    """

    class_id: int
    class_name: str
    pixel_fraction: float
    mean_confidence: float
    presence: float


@dataclass
class SegmentationResult:
    """Everything one image produced. Channels of patch_probs align with class_ids/class_names."""

    labels: np.ndarray  # (H, W) uint16 label ids; 0 = background or unlabelled
    confidence: np.ndarray  # (H, W) float32, probability of the chosen class
    patch_probs: np.ndarray  # (C, h, w) float32 class probabilities before upsampling
    objectness: np.ndarray  # (h, w) float32 saliency from the objectness head
    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    stats: list[ClassStat]
    vocabulary_version: int = 0
    keyframe: bool = False  # CLIP-DIY scores were fused into this result
    keyframe_stamp: float | None = None  # stamp of the frame the fused keyframe was computed on
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    # The refined dense features (whole mode; None in slide mode): phrase queries, mappers.
    features: FrameFeatures | None = None
    # The vocabulary the frame was labelled with (its label map), when the producer knows it.
    vocabulary: VocabularySnapshot | None = None


def label_and_confidence(
    probs: torch.Tensor, ids: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """probs (..., C, H, W), ids (C,) -> labels (..., H, W) of ids' dtype and confidence
    (..., H, W) float32. Pixels whose confidence is below `threshold` get id 0 (unlabelled).
    """
    confidence, index = probs.max(dim=-3)
    labels = ids[index]
    if threshold > 0:
        labels = torch.where(confidence < threshold, torch.zeros_like(labels), labels)
    return labels, confidence.float()


def class_stats(
    labels: np.ndarray,
    confidence: np.ndarray,
    patch_probs: np.ndarray,
    class_ids: tuple[int, ...],
    class_names: tuple[str, ...],
) -> list[ClassStat]:
    """One ClassStat per class with a non-zero id (the background channel is left out)."""
    total = max(labels.size, 1)
    flat_labels = labels.ravel()
    counts = np.bincount(flat_labels, minlength=max(class_ids, default=0) + 1)
    conf_sums = np.bincount(flat_labels, weights=confidence.ravel(), minlength=counts.size)
    presence = patch_probs.reshape(patch_probs.shape[0], -1).max(axis=1) if patch_probs.size else []
    stats = []
    for channel, (cid, name) in enumerate(zip(class_ids, class_names, strict=True)):
        if cid == 0:
            continue
        n = int(counts[cid])
        stats.append(ClassStat(
            class_id=cid,
            class_name=name,
            pixel_fraction=n / total,
            mean_confidence=float(conf_sums[cid] / n) if n else 0.0,
            presence=float(presence[channel]),
        ))
    return stats


def results_from_device(
    pixel_probs: torch.Tensor,
    patch_probs: torch.Tensor,
    objectness: torch.Tensor,
    class_ids: tuple[int, ...],
    class_names: tuple[str, ...],
    threshold: float,
    vocabulary_version: int,
    ids: torch.Tensor | None = None,
) -> list[SegmentationResult]:
    """One SegmentationResult per image from probabilities on the device: pixel_probs
    (B, C, H, W), patch_probs (B, C, h, w), objectness (B, h, w). Labels and confidence are
    computed on the device, and only they and the patch-grid arrays are downloaded, in one
    transfer (`transfer.download`); stats are derived on the host. Every producer (the
    Segmenter, keyframe fusion) goes through here. `ids`: class_ids as a tensor on the device,
    when the caller has one already."""
    if ids is None:
        ids = torch.tensor(class_ids, dtype=torch.int32, device=pixel_probs.device)
    labels, conf = label_and_confidence(pixel_probs, ids, threshold)
    labels = labels.to(label_dtype(max(class_ids, default=0)))
    labels_b, conf_b, probs_b, obj_b = download([labels, conf, patch_probs.float(),
                                                 objectness.float()])
    out = []
    for b in range(labels_b.shape[0]):
        labels_np = labels_b[b].astype(np.uint16, copy=False)
        out.append(SegmentationResult(
            labels=labels_np,
            confidence=conf_b[b],
            patch_probs=probs_b[b],
            objectness=obj_b[b],
            class_ids=tuple(class_ids),
            class_names=tuple(class_names),
            stats=class_stats(labels_np, conf_b[b], probs_b[b], tuple(class_ids),
                              tuple(class_names)),
            vocabulary_version=vocabulary_version,
        ))
    return out

