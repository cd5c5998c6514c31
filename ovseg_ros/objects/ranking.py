"""Ranking a frame's instances by a phrase ("the red mug"), from their CLIP vectors alone.

Each instance is scored the way ~/query scores a pixel (core/query.py), with the instance's
vector in place of the patch's refined feature:

* cosine: cos(v, t) of the instance's unit vector v and the phrase's text embedding t;
* relevance: the phrase's probability as one extra class beside the frame's vocabulary,
  sigmoid(s cos(v, t) - logsumexp_c(s cos(v, t_c) + log prior_c)) with s = the logit scale
  (100) and the frame's class prior (1 when none); for a phrase that IS a vocabulary class
  (`channel`), that class's softmax probability over the vocabulary instead. So a relevance
  near 1 means the instance looks more like the phrase than like any class of the vocabulary,
  on the same scale as the pixel relevance maps of ~/query.

Instances come back best first (relevance, then cosine, then index). No image is recomputed:
one (N, C + 1) product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class InstanceScore:
    index: int  # instance k (1-based)
    cosine: float
    relevance: float  # in [0, 1]


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=1, keepdims=True)))[:, 0]


def rank_instances(vectors: np.ndarray, phrase: np.ndarray, vocabulary: np.ndarray,
                   channel: int | None = None, prior: np.ndarray | None = None,
                   logit_scale: float = LOGIT_SCALE) -> list[InstanceScore]:
    """Scores of instances 1..N, best first.

    vectors: (N, D) unit instance vectors (`instance_vectors`); phrase: (D,) unit text
    embedding; vocabulary: (C, D) the frame's text matrix (FrameFeatures.text, background row
    included when on); channel: the phrase's row in `vocabulary` when it is a class of it, else
    None; prior: (C,) class-prior factors or None."""
    v = np.asarray(vectors, np.float64)
    t = np.asarray(phrase, np.float64).reshape(-1)
    vocab = np.asarray(vocabulary, np.float64)
    if v.ndim != 2 or v.shape[1:] != t.shape or vocab.ndim != 2 or vocab.shape[1] != t.size:
        raise ValueError(f"dimensions differ: vectors {v.shape}, phrase {t.shape}, "
                         f"vocabulary {vocab.shape}")
    if len(v) == 0:
        return []
    cos = v @ t
    logits = logit_scale * (v @ vocab.T)
    if prior is not None:
        logits = logits + np.log(np.clip(np.asarray(prior, np.float64), 1e-30, None))[None]
    norm = _logsumexp(logits)
    if channel is not None:
        relevance = np.exp(logits[:, channel] - norm)
    else:
        relevance = 1.0 / (1.0 + np.exp(norm - logit_scale * cos))
    order = sorted(range(len(v)), key=lambda i: (-relevance[i], -cos[i], i))
    return [InstanceScore(i + 1, float(cos[i]), float(relevance[i])) for i in order]
