"""Phrase queries against a segmented frame, without touching the vocabulary.

The relevance of a phrase is its probability computed exactly as segmentation computes class
probabilities, with the phrase as one extra class:

- A phrase that is a class of the frame's vocabulary (case-insensitive, whitespace normalised;
  "background" when background handling is on) IS that class: its relevance is that class's
  channel of the frame's final patch probabilities, upsampled by the same path, so it equals
  the confidence wherever the label image shows that class.
- Any other phrase p: softmax(LOGIT_SCALE * cos(F', [text_vocabulary, text_p])) over the
  vocabulary (background row included when on) plus p, with the frame's class prior applied to
  the vocabulary channels (factor 1 for p) and renormalised; then the same upsampling. Each
  phrase of a request is scored on its own against the vocabulary, never against the other
  phrases. The background rule never changes a class channel (it only raises the background
  channel), so it does not enter. On the one frame per keyframe into which CLIP-DIY was fused
  spatially, p is scored against the CLIP-DINOiser logits (CLIP-DIY has no score for p).

Closed form used: p's probability = sigmoid(l_p - logsumexp_c(l_c + log prior_c)).
Cost: the new phrases' text embeddings (cached per phrase), one (C + K) x D x hw matmul and the
upsampling; the image encoder never runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import tiling
from .reproducible import class_logsumexp
from .results import SegmentationResult
from .vocabulary import check_name

MAX_PHRASES = 16


class QueryError(ValueError):
    """The query was refused; the message says why and what to change."""


@dataclass(frozen=True)
class PhraseMap:
    """One phrase's answer on one frame."""

    phrase: str
    relevance: np.ndarray  # (H, W) float32 in [0, 1]
    class_id: int | None  # the vocabulary class the phrase is, or None for a new phrase

    @property
    def score(self) -> float:
        return float(self.relevance.max())

    @property
    def peak(self) -> tuple[int, int]:
        """(u, v): column and row of the highest relevance (the first one)."""
        v, u = np.unravel_index(int(np.argmax(self.relevance)), self.relevance.shape)
        return int(u), int(v)

    def mask(self, threshold: float) -> np.ndarray:
        """(H, W) bool: relevance >= threshold."""
        return self.relevance >= threshold


def validate_phrases(phrases: Sequence[str], token_count: Callable[[str], int],
                     limit: int = MAX_PHRASES) -> list[str]:
    """Normalised phrases, or QueryError naming every problem: 1 to `limit` of them, each
    passing the class names' own rules (`vocabulary.check_name`: a string, not too long,
    no control characters, not empty, within CLIP's context once in a template)."""
    if isinstance(phrases, str):
        raise QueryError("phrases must be a list of strings, not one string")
    if not 1 <= len(phrases) <= limit:
        raise QueryError(f"{len(phrases)} phrases: send 1 to {limit} per request")
    problems, out = [], []
    for i, raw in enumerate(phrases):
        name, problem = check_name(raw, f"phrase {i}", token_count)
        if problem is None:
            out.append(name)
        else:
            problems.append(problem)
    if problems:
        raise QueryError("; ".join(problems))
    return out


@torch.inference_mode()
def relevance_maps(segmenter, result: SegmentationResult, phrases: Sequence[str]
                   ) -> list[PhraseMap]:
    """Score `phrases` on a segmented frame (see the module docstring); raises QueryError.

    segmenter: the Segmenter that produced `result` (its text cache and token counter)."""
    feats = result.features
    if feats is None:
        raise QueryError("this frame kept no features: queries need mode 'whole' (slide "
                         "mode stitches windows and keeps none)")
    names = validate_phrases(phrases, segmenter.token_count)
    channel_of = {n.casefold(): c for c, n in enumerate(result.class_names)}
    channels = [channel_of.get(n.casefold()) for n in names]
    new = list(dict.fromkeys(n for n, c in zip(names, channels, strict=True) if c is None))
    dev = feats.pooled.device
    maps: list[torch.Tensor] = []
    new_probs: dict[str, torch.Tensor] = {}
    if new:
        text = segmenter.text_cache.embed(new).to(dev)
        logits = feats.logits(torch.cat([feats.text.to(dev), text]))  # (C + K, h, w)
        vocab, phrase = logits[:len(feats.text)], logits[len(feats.text):]
        if feats.prior is not None:
            vocab = vocab + torch.log(feats.prior.to(dev).float().clamp_min(1e-30))[:, None, None]
        probs = torch.sigmoid(phrase - class_logsumexp(vocab, dim=0))
        new_probs = dict(zip(new, probs, strict=True))
    patch_probs = torch.from_numpy(result.patch_probs)
    for name, channel in zip(names, channels, strict=True):
        maps.append(patch_probs[channel].to(dev) if channel is not None
                    else new_probs[name])
    up = tiling.upsample_to_image(torch.stack(maps)[None], feats.patch, feats.processing_size,
                                  feats.image_size)[0]
    host = up.permute(1, 2, 0).cpu().numpy()  # (H, W, P) contiguous: one download
    return [PhraseMap(name, np.ascontiguousarray(host[..., k]),
                      None if channel is None else int(result.class_ids[channel]))
            for k, (name, channel) in enumerate(zip(names, channels, strict=True))]
