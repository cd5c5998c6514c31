"""Phrase queries and kept features on the core (no ROS): the query semantics of core/query.py,
the features of core/features.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import FramePipeline, KeyframeConfig
from ovseg_ros.core.features import LOGIT_SCALE, pixel_patches, segment_means
from ovseg_ros.core.query import MAX_PHRASES, QueryError, relevance_maps
from ovseg_ros.core.vocabulary import VocabularyError

IMAGE = np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)
PROMPTS = ["chair", "person", "table"]


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("query"), threshold=0.0)
    s.set_prompts(PROMPTS)
    return s


def _labelled_classes(res) -> list[int]:
    return [c for c in res.class_ids if c != 0 and (res.labels == c).any()]


def test_vocabulary_name_is_its_class_confidence(seg):
    res = seg.segment(IMAGE)
    shown = _labelled_classes(res)
    assert shown, "the tiny model labelled no class: the test would prove nothing"
    names = dict(zip(res.class_ids, res.class_names, strict=True))
    maps = relevance_maps(seg, res, [names[c].upper() for c in shown] + ["background"])
    for cid, pm in zip(shown, maps, strict=False):
        assert pm.class_id == cid and pm.relevance.shape == res.labels.shape
        where = res.labels == cid
        np.testing.assert_allclose(pm.relevance[where], res.confidence[where], atol=1e-6)
    assert maps[-1].class_id == 0  # background is the background channel


def test_new_phrase_is_one_extra_class(seg):
    res = seg.segment(IMAGE)
    version = seg.snapshot.version
    (pm,) = relevance_maps(seg, res, ["a red mug"])
    assert pm.class_id is None and pm.relevance.shape == IMAGE.shape[:2]
    assert seg.snapshot.version == version and "a red mug" not in seg.snapshot.names
    # Reference: softmax over vocabulary + phrase on F', phrase channel, same upsampling.
    f = res.features
    text = torch.cat([f.text, seg.text_cache.embed(["a red mug"])])
    probs = torch.softmax(LOGIT_SCALE * torch.einsum("dhw,kd->khw", f.unit(), text), dim=0)
    ref = seg.upsample(probs[-1:][None], IMAGE.shape[:2])[0, 0].numpy()
    np.testing.assert_allclose(pm.relevance, ref, atol=1e-5)
    assert 0.0 <= pm.relevance.min() and pm.relevance.max() <= 1.0
    u, v = pm.peak
    assert pm.relevance[v, u] == pm.score
    # Each phrase on its own: the answer does not depend on the other phrases of a request.
    both = relevance_maps(seg, res, ["a red mug", "a lamp"])
    np.testing.assert_allclose(both[0].relevance, pm.relevance, atol=1e-6)


def test_query_with_prior_matches_segmentation(seg):
    """With a keyframe class prior, a vocabulary name still equals the confidence, and a
    new phrase is renormalised against the prior-weighted vocabulary."""
    prior = {seg.snapshot.ids[0]: 0.2, seg.snapshot.ids[1]: 0.7}
    res = seg.segment(IMAGE, class_prior=prior)
    assert res.features.prior is not None
    for cid in _labelled_classes(res):
        name = res.class_names[res.class_ids.index(cid)]
        (pm,) = relevance_maps(seg, res, [name])
        np.testing.assert_allclose(pm.relevance[res.labels == cid],
                                   res.confidence[res.labels == cid], atol=1e-6)
    f = res.features
    text = torch.cat([f.text, seg.text_cache.embed(["lamp"])])
    probs = torch.softmax(LOGIT_SCALE * torch.einsum("dhw,kd->khw", f.unit(), text), dim=0)
    probs = probs * torch.cat([f.prior, torch.ones(1)])[:, None, None]
    probs = probs / probs.sum(0, keepdim=True)
    (pm,) = relevance_maps(seg, res, ["lamp"])
    ref = seg.upsample(probs[-1:][None], IMAGE.shape[:2])[0, 0].numpy()
    np.testing.assert_allclose(pm.relevance, ref, atol=1e-5)


@pytest.mark.parametrize("phrases, why", [
    ([], "1 to 16"), (["x"] * (MAX_PHRASES + 1), "1 to 16"), ([""], "empty"),
    (["  "], "empty"), (["a" * 10000], "characters"), (["word " * 80], "77-token"),
    (["bad\x00name"], "control"),
])
def test_bad_phrases_are_refused(seg, phrases, why):
    res = seg.segment(IMAGE)
    with pytest.raises(QueryError, match=why):
        relevance_maps(seg, res, phrases)


@pytest.mark.parametrize("name", ["", "\u200b ", "a" * 10000, "word " * 80, "bad\x00name", 7])
def test_a_phrase_and_a_prompt_are_refused_for_the_same_reason(seg, name):
    """One rule for class names and query phrases (vocabulary.check_name): the same fault
    gives the same refusal, whether it comes in ~/set_prompts or in ~/query."""
    res = seg.segment(IMAGE)
    with pytest.raises(QueryError) as phrase:
        relevance_maps(seg, res, [name])
    with pytest.raises(VocabularyError) as prompt:
        seg.set_prompts([name])
    assert str(phrase.value).removeprefix("phrase 0") == str(prompt.value).removeprefix(
        "prompt 0")
    assert seg.snapshot.names == tuple(PROMPTS)  # the refused change lost nothing


def test_features_reproduce_logits_and_segment_means(seg):
    """feature . text reproduces the classification; the features are a view (no copy)."""
    res = seg.segment(IMAGE)
    f = res.features
    assert f.grid == res.patch_probs.shape[1:]
    logits = f.logits(f.text)
    probs = torch.softmax(logits, dim=0).numpy()
    fg = slice(1, None)  # the background rule only ever changes channel 0
    np.testing.assert_allclose(probs[fg], res.patch_probs[fg], atol=1e-5)
    # Segment means: each pixel takes its patch's vector.
    segments = torch.zeros(IMAGE.shape[:2], dtype=torch.int64)
    segments[:20, :30], segments[30:, 40:] = 1, 2
    means = segment_means(f, segments, 2)
    cells = pixel_patches(f)
    unit = f.unit().reshape(f.dim, -1).T
    for k in (1, 2):
        ref = unit[cells[segments == k]].mean(dim=0)
        torch.testing.assert_close(means[k - 1], ref, atol=1e-5, rtol=0)


def test_fused_keyframe_keeps_features(seg):
    pipe = FramePipeline(seg, KeyframeConfig(keyframes=True, asynchronous=False,
                                             keyframe_every_n=1))
    res = pipe.process(IMAGE, 0.0)
    assert res.keyframe and res.features is not None and res.features.fused
    (pm,) = relevance_maps(seg, res, ["lamp"])
    assert pm.relevance.shape == IMAGE.shape[:2]
    pipe.close()


def test_slide_mode_refuses_queries(tmp_path):
    s = tiny_segmenter(tmp_path, mode="slide")
    s.set_prompts(PROMPTS)
    res = s.segment(IMAGE)
    with pytest.raises(QueryError, match="whole"):
        relevance_maps(s, res, ["lamp"])
