"""A pixel's classes (core/pixel.py) against the frame's own images: the ranked probabilities
are the upsampled class maps at that pixel, the first is the label image's class with the
confidence image's value, at every size the upsampling handles differently."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import FramePipeline, KeyframeConfig
from ovseg_ros.core.pixel import MAX_RANKED, PixelError, pixel_classes

PROMPTS = ["chair", "person", "table", "lamp"]


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("pixel"), threshold=0.0)
    s.set_prompts(PROMPTS)
    return s


def picture(h: int, w: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def upsampled(seg, res) -> np.ndarray:
    """(C, H, W): the frame's patch probabilities through the Segmenter's own upsampling."""
    probs = torch.from_numpy(res.patch_probs)[None]
    return seg.upsample(probs, res.labels.shape)[0].numpy()


# Sizes: padded to 16 (50x70), exact multiples (64x48), and shrunk by input_size (long frames
# at input_size 40 resize with antialiasing: another axis matrix).
@pytest.mark.parametrize("size, input_size", [((50, 70), 0), ((48, 64), 0), ((90, 60), 40)])
def test_ranking_is_the_upsampled_maps_and_starts_with_the_label(tmp_path, seg, size,
                                                                 input_size):
    s = seg if not input_size else tiny_segmenter(tmp_path, threshold=0.0,
                                                  input_size=input_size)
    if input_size:
        s.set_prompts(PROMPTS)
    res = s.segment(picture(*size))
    full = upsampled(s, res)
    rng = np.random.default_rng(0)
    points = [(0, 0), (size[1] - 1, size[0] - 1)] + [
        (int(rng.integers(size[1])), int(rng.integers(size[0]))) for _ in range(20)]
    for u, v in points:
        px = pixel_classes(res, u, v, count=MAX_RANKED)
        assert len(px.ranked) == len(res.class_ids)  # every class, background included
        probs = dict((cid, p) for cid, _, p in px.ranked)
        for c, cid in enumerate(res.class_ids):
            assert probs[cid] == pytest.approx(float(full[c, v, u]), abs=1e-5)
        top_id, top_name, top_p = px.ranked[0]
        assert px.class_id == int(res.labels[v, u]) == top_id
        assert px.confidence == pytest.approx(top_p, abs=1e-5)
        assert px.class_name == top_name
        assert [p for _, _, p in px.ranked] == sorted((p for _, _, p in px.ranked), reverse=True)


def test_count_limits_the_ranking_and_bad_pixels_are_refused(seg):
    res = seg.segment(picture(50, 70))
    assert len(pixel_classes(res, 3, 4, count=2).ranked) == 2
    assert len(pixel_classes(res, 3, 4, count=0).ranked) == 1
    for u, v in ((70, 0), (0, 50), (-1, 3)):
        with pytest.raises(PixelError, match="outside the 70x50 frame"):
            pixel_classes(res, u, v)


def test_below_the_threshold_the_pixel_is_unlabelled_but_still_ranked(tmp_path):
    s = tiny_segmenter(tmp_path, threshold=0.99, background=False)
    s.set_prompts(PROMPTS)
    res = s.segment(picture(50, 70))
    v, u = np.argwhere(res.labels == 0)[0]
    px = pixel_classes(res, int(u), int(v))
    assert px.class_id == 0 and px.class_name == "unlabelled"
    assert px.ranked[0][0] != 0 and px.ranked[0][2] < 0.99
    assert px.confidence == pytest.approx(px.ranked[0][2], abs=1e-5)


def test_a_fused_keyframe_is_ranked_by_its_fused_probabilities(seg):
    pipe = FramePipeline(seg, KeyframeConfig(keyframes=True, asynchronous=False,
                                             keyframe_every_n=1))
    res = pipe.process(picture(50, 70), 0.0)
    pipe.close()
    assert res.keyframe
    full = upsampled(seg, res)
    px = pixel_classes(res, 10, 20, count=MAX_RANKED)
    assert px.class_id == int(res.labels[20, 10]) == px.ranked[0][0]
    assert px.ranked[0][2] == pytest.approx(float(full.max(axis=0)[20, 10]), abs=1e-5)


def test_slide_mode_gives_the_label_without_a_ranking(tmp_path):
    s = tiny_segmenter(tmp_path, mode="slide")
    s.set_prompts(PROMPTS)
    res = s.segment(picture(50, 70))
    px = pixel_classes(res, 5, 6)
    assert px.ranked == [] and px.class_id == int(res.labels[6, 5])
    assert px.confidence == pytest.approx(float(res.confidence[6, 5]))
