"""One CLIP vector per instance (coverage-weighted mean of its patches' F', unit length) and the
ranking of instances by a phrase on the scale of ~/query's pixel relevance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core.features import FrameFeatures
from ovseg_ros.objects import find_instances, instance_vectors, rank_instances

H, W, P = 32, 48, 16  # a 2 x 3 patch grid at the image's own size


def features(seed: int = 0, dim: int = 8) -> FrameFeatures:
    g = torch.Generator().manual_seed(seed)
    pooled = torch.randn(dim, H // P, W // P, generator=g)
    return FrameFeatures(pooled, torch.eye(dim)[:3], None, P, (H, W), (H, W))


def test_an_instance_inside_one_patch_gets_that_patchs_unit_vector():
    f = features()
    ids = np.zeros((H, W), np.uint16)
    ids[2:10, 20:30] = 1  # inside patch (row 0, column 1)
    ids[20:30, 0:16] = 2  # patch (1, 0) exactly
    vec = instance_vectors(f, ids, 2)
    unit = torch.nn.functional.normalize(f.pooled, dim=0)
    assert vec.dtype == np.float32 and vec.shape == (2, 8)
    assert np.allclose(vec[0], unit[:, 0, 1].numpy(), atol=1e-6)
    assert np.allclose(vec[1], unit[:, 1, 0].numpy(), atol=1e-6)


def test_patches_count_by_the_pixels_they_cover():
    f = features()
    ids = np.zeros((H, W), np.uint16)
    ids[0:16, 12:16] = 1  # 64 pixels in patch (0, 0)
    ids[0:16, 16:28] = 1  # 192 pixels in patch (0, 1)
    unit = torch.nn.functional.normalize(f.pooled, dim=0)
    want = 64 * unit[:, 0, 0] + 192 * unit[:, 0, 1]
    got = instance_vectors(f, ids, 1)[0]
    assert np.allclose(got, (want / want.norm()).numpy(), atol=1e-6)
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-6)


def test_the_instance_image_must_be_the_frames():
    with pytest.raises(ValueError, match="not the frame's"):
        instance_vectors(features(), np.zeros((H, W + 1), np.uint16), 0)
    assert instance_vectors(features(), np.zeros((H, W), np.uint16), 0).shape == (0, 8)


def test_ranking_puts_the_described_object_first():
    vocab = np.eye(4)[:3]
    phrase = np.array([0.6, 0.0, 0.0, 0.8])
    vectors = np.array([[1.0, 0, 0, 0], [0.6, 0, 0, 0.8], [0, 1.0, 0, 0]])
    ranked = rank_instances(vectors, phrase, vocab)
    assert [r.index for r in ranked] == [2, 1, 3]
    assert ranked[0].cosine == pytest.approx(1.0) and ranked[0].relevance > 0.99
    assert all(0.0 <= r.relevance <= 1.0 for r in ranked)


def test_a_vocabulary_phrase_is_its_class_probability():
    rng = np.random.default_rng(2)
    vocab = rng.normal(size=(5, 16))
    vocab /= np.linalg.norm(vocab, axis=1, keepdims=True)
    vectors = rng.normal(size=(4, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    prior = np.array([1.0, 0.5, 0.2, 1.0, 1.0])
    ranked = rank_instances(vectors, vocab[2], vocab, channel=2, prior=prior)
    logits = torch.tensor(100.0 * vectors @ vocab.T) + torch.log(torch.tensor(prior))
    want = torch.softmax(logits, dim=1)[:, 2].numpy()
    assert {r.index: r.relevance for r in ranked} == pytest.approx(
        {i + 1: float(v) for i, v in enumerate(want)})


def test_relevance_is_querys_for_a_one_patch_instance(tmp_path):
    """An instance covering one patch exactly scores a new phrase as ~/query scores that patch
    (core/query.py's closed form on the frame's own features and text)."""
    seg = tiny_segmenter(tmp_path)
    seg.set_prompts(["chair", "person"])
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    res = seg.segment(rgb)
    feats = res.features
    (hs, ws), p = feats.processing_size, feats.patch
    assert (hs, ws) == (64, 64) and feats.grid == (64 // p, 64 // p)
    ids = np.zeros((64, 64), np.uint16)
    ids[p:2 * p, 2 * p:3 * p] = 1  # patch (1, 2)
    vec = instance_vectors(feats, ids, 1)
    text = seg.text_cache.embed(["red mug"]).float()
    ranked = rank_instances(vec, text[0].numpy(), feats.text.float().numpy())
    logits = feats.logits(torch.cat([feats.text.float(), text]))[:, 1, 2]
    want = torch.sigmoid(logits[-1] - torch.logsumexp(logits[:-1], dim=0))
    assert ranked[0].relevance == pytest.approx(float(want), abs=1e-4)


def test_dimensions_must_agree():
    with pytest.raises(ValueError, match="dimensions differ"):
        rank_instances(np.ones((2, 4)), np.ones(3), np.ones((2, 4)))
    assert rank_instances(np.zeros((0, 4)), np.ones(4), np.ones((2, 4))) == []


def test_vectors_of_found_instances_are_unit_rows():
    f = features(3)
    lab = np.zeros((H, W), np.uint16)
    lab[0:20, 0:20] = 1
    lab[22:32, 30:48] = 2
    frame = find_instances(lab, np.ones((H, W), np.float32), {1: "a", 2: "b"}, 0.0)
    vec = instance_vectors(f, frame.ids, len(frame))
    assert np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-6)
