"""Keyframe fusion rules, patch-grid geometry and the Segmenter's class prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core.clipdiy import ClipDiyConfig
from ovseg_ros.core.fusion import (
    ClipDiyStage,
    KeyframeScores,
    PresencePrior,
    align_channels,
    fuse_keyframe,
    fuse_probabilities,
    image_to_patches,
    patches_to_image,
    prior_weight,
)
from ovseg_ros.core.results import label_and_confidence


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("fusion"))
    s.set_prompts(["chair", "person", "table"])
    return s


@pytest.fixture(scope="module")
def seg_nobg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("fusion_nobg"), background=False)
    s.set_prompts(["chair", "person", "table"])
    return s


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def keyframe(probs, ids, stamp=1.5, index=0, t=0.0):
    return KeyframeScores(probs=probs, class_ids=tuple(ids), stamp=stamp, frame_index=index,
                          time=t, seconds=0.25)


def test_geometric_mean_hand_made():
    p_dino = torch.tensor([0.7, 0.2, 0.1]).view(3, 1, 1)
    p_diy = torch.tensor([0.1, 0.6, 0.3]).view(3, 1, 1)
    fused = fuse_probabilities(p_dino, p_diy, 0.25)[:, 0, 0]
    raw = np.array([0.7 ** 0.75 * 0.1 ** 0.25, 0.2 ** 0.75 * 0.6 ** 0.25,
                    0.1 ** 0.75 * 0.3 ** 0.25])
    assert np.allclose(fused.numpy(), raw / raw.sum(), atol=1e-6)
    assert torch.allclose(fuse_probabilities(p_dino, p_diy, 0.0), p_dino, atol=1e-6)
    assert torch.allclose(fuse_probabilities(p_dino, p_diy, 1.0), p_diy, atol=1e-6)
    # unnormalised input (background rule set a channel to 1) is renormalised
    bg_rule = torch.tensor([1.0, 0.3, 0.2]).view(3, 1, 1)
    assert torch.allclose(fuse_probabilities(bg_rule, p_diy, 0.0)[:, 0, 0],
                          torch.tensor([1.0, 0.3, 0.2]) / 1.5, atol=1e-6)


def test_prior_formula_numbers():
    assert prior_weight(0, 10) == 1.0
    assert prior_weight(10, 10) == pytest.approx(0.5)
    assert prior_weight(25, 10) == pytest.approx(0.5 ** 2.5)
    assert prior_weight(-3, 10) == 1.0  # clock went back
    probs = torch.zeros(3, 4, 4)
    probs[0] = 1.0
    probs[1, 0, 0], probs[2, 1, 1] = 0.8, 0.01
    prior = PresencePrior.from_keyframe(keyframe(probs, (0, 5, 9)), floor=0.1)
    assert prior.factors == pytest.approx({5: 0.8, 9: 0.1})  # background excluded, floored
    at = prior.at(20, 10)
    assert at[5] == pytest.approx(0.8 ** 0.25) and at[9] == pytest.approx(0.1 ** 0.25)
    assert all(v == pytest.approx(1.0, abs=1e-3) for v in prior.at(200, 10).values())


def test_patch_geometry():
    # 40 x 56 processing image, patch 16 -> 3 x 4 grid covering 48 x 64 (padded)
    ramp = (torch.arange(400) + 0.5).float().view(1, 1, 400, 1).expand(1, 1, 400, 7) / 400
    at_patches = image_to_patches(ramp, (3, 4), 16, (40, 56))
    # patch centres at 8, 24 and (padded) 40 processing px -> 0.2, 0.6 and the border 1.0
    assert torch.allclose(at_patches[0, 0, :, 0], torch.tensor([0.2, 0.6, 0.99875]), atol=2e-3)
    grid = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    img = patches_to_image(grid[None, None], 16, (40, 56), (40, 56))[0, 0]
    # output row y sits at y + 0.5 px; patch row r at 16 r + 8: linear between, flat outside
    y = torch.arange(40) + 0.5
    assert torch.allclose(img[:, 3], ((y - 8) / 16).clamp(0, 2), atol=1e-5)


def test_segmenter_class_prior_reweights_before_argmax(seg_nobg):
    image = rgb(48, 64)
    plain = seg_nobg.segment(image)
    ids = plain.class_ids
    prior = {ids[0]: 0.05, ids[2]: 2.0, 999: 0.5}  # unknown ids are ignored
    weighted = seg_nobg.segment(image, class_prior=prior)
    f = np.array([prior.get(i, 1.0) for i in ids], dtype=np.float32)[:, None, None]
    expected = plain.patch_probs * f
    expected /= expected.sum(axis=0, keepdims=True)
    assert np.allclose(weighted.patch_probs, expected, atol=1e-5)
    assert np.allclose(seg_nobg.segment(image, class_prior={}).patch_probs, plain.patch_probs)


def test_upsample_is_the_segmenters_own_path(seg):
    image = rgb(50, 70, seed=3)
    res = seg.segment(image)
    pixels = seg.upsample(torch.from_numpy(res.patch_probs)[None], (50, 70))[0]
    ids = torch.tensor(res.class_ids, dtype=torch.int32)
    labels, conf = label_and_confidence(pixels, ids, seg.config.threshold)
    assert np.array_equal(labels.numpy().astype(np.uint16), res.labels)
    assert np.allclose(conf.numpy(), res.confidence, atol=1e-6)


def test_fuse_keyframe_recomputes_everything(seg):
    image = rgb(50, 70, seed=4)
    res = seg.segment(image)
    c = len(res.class_ids)
    torch.manual_seed(0)
    diy = torch.softmax(5 * torch.randn(c, 32, 32), dim=0)
    fused = fuse_keyframe(seg, res, keyframe(diy, res.class_ids), 0.5)
    assert fused.keyframe and fused.keyframe_stamp == 1.5
    assert fused.timings["keyframe"] == 0.25 and "keyframe_fusion" in fused.timings
    assert fused.patch_probs.shape == res.patch_probs.shape
    assert not np.allclose(fused.patch_probs, res.patch_probs, atol=1e-3)
    h, w = res.patch_probs.shape[1:]
    p_diy = image_to_patches(diy[None], (h, w), 16, (50, 70))[0]
    expected = fuse_probabilities(torch.from_numpy(res.patch_probs), p_diy, 0.5)
    assert np.allclose(fused.patch_probs, expected.numpy(), atol=1e-6)
    pixels = seg.upsample(expected[None], (50, 70))[0]
    labels, conf = label_and_confidence(pixels, torch.tensor(res.class_ids), 0.0)
    assert np.array_equal(fused.labels, labels.numpy().astype(np.uint16))
    assert np.allclose(fused.confidence, conf.numpy(), atol=1e-6)
    assert [s.class_id for s in fused.stats] == [s.class_id for s in res.stats]
    frac = {s.class_id: s.pixel_fraction for s in fused.stats}
    for cid in res.class_ids[1:]:
        assert frac[cid] == pytest.approx(float((fused.labels == cid).mean()))
    assert np.array_equal(fused.objectness, res.objectness)
    assert not res.keyframe  # the input result is left alone


def test_channels_aligned_by_id_or_dropped():
    probs = torch.arange(3.0).view(3, 1, 1)
    kf = keyframe(probs, (0, 4, 7))
    assert align_channels(kf, (0, 4, 7)) is probs
    assert align_channels(kf, (0, 7, 4))[:, 0, 0].tolist() == [0.0, 2.0, 1.0]
    assert align_channels(kf, (0, 4)) is None
    assert align_channels(kf, (0, 4, 8)) is None


def test_clipdiy_stage_output(seg):
    image = rgb(50, 70, seed=5)
    res = seg.segment(image)
    stage = ClipDiyStage(seg, ClipDiyConfig(image_size=(48, 64), crop_sizes=(48, 24)))
    probs = stage(image, res)
    assert probs.shape == (len(res.class_ids), 48, 64)
    assert torch.allclose(probs.sum(dim=0), torch.ones(48, 64), atol=1e-5)
    stage.prepare(["lamp"])
    assert "lamp" in stage.diy.text_cache and "background" in stage.diy.text_cache
