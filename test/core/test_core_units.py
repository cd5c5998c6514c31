"""Unit tests of each core stage on tiny seeded-random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import VocabularyError
from ovseg_ros.core.dinoiser import apply_background_rule, classify, guided_pool
from ovseg_ros.core.maskclip import PositionalEmbedding, pad_to_multiple
from ovseg_ros.core.tiling import short_side_size, window_starts, windows
from ovseg_ros.core.vocabulary import Vocabulary, validate_prompts


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("units"))
    s.set_prompts(["chair", "person", "table"])
    return s


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_padding_goes_bottom_right_with_zeros():
    x = torch.ones(2, 3, 17, 33)
    y = pad_to_multiple(x, 16)
    assert y.shape == (2, 3, 32, 48)
    assert torch.all(y[:, :, :17, :33] == 1) and torch.all(y[:, :, 17:] == 0)
    assert torch.all(y[:, :, :, 33:] == 0)
    assert pad_to_multiple(x[:, :, :16, :32], 16).shape == (2, 3, 16, 32)


def test_positional_embedding_identity_at_native_grid_and_cached():
    torch.manual_seed(0)
    table = torch.randn(1 + 4 * 4, 8)
    pos = PositionalEmbedding(table, (4, 4))
    assert torch.allclose(pos(4, 4), table, atol=1e-5)
    resized = pos(3, 7)
    assert resized.shape == (1 + 21, 8)
    assert torch.equal(resized[0], table[0])  # class-token row is kept
    assert pos(3, 7) is resized  # cached per grid


def test_dense_features_shapes(seg):
    x = torch.rand(2, 3, 50, 70)
    dense, g = seg.features(x)
    assert dense.shape == (2, seg.encoder.embed_dim, 4, 5)
    assert g.shape == (2, seg.encoder.width, 4, 5)


def test_pooling_with_identity_correlations_keeps_features():
    torch.manual_seed(0)
    dense = torch.randn(2, 8, 3, 4)
    eye = torch.eye(12).expand(2, 12, 12)
    assert torch.allclose(guided_pool(dense, eye, 0.2), dense, atol=1e-5)


def test_pooling_with_uniform_correlations_averages():
    dense = torch.randn(1, 8, 2, 3)
    ones = torch.ones(1, 6, 6)
    pooled = guided_pool(dense, ones, 0.2)
    mean = dense.flatten(2).mean(-1)[..., None, None].expand_as(dense)
    assert torch.allclose(pooled, mean, atol=1e-5)


def test_classify_is_softmax_of_scaled_cosine():
    text = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    dense = text[1].view(1, 8, 1, 1) * 5.0  # exactly class 1's direction
    probs = classify(dense, text)
    assert probs.shape == (1, 3, 1, 1)
    assert int(probs[0, :, 0, 0].argmax()) == 1
    assert torch.allclose(probs.sum(1), torch.ones(1, 1, 1))


def test_background_rule_batched():
    probs = torch.tensor([[0.5, 0.5], [0.995, 0.005]]).t().reshape(1, 2, 1, 2).repeat(2, 1, 1, 1)
    objectness = torch.tensor([[[0.2, 0.2]], [[0.9, 0.2]]])  # (B=2, h=1, w=2)
    out = apply_background_rule(probs, objectness, delta=0.99)
    # Image 0: patch 0 uncertain & not salient -> bg 1.0; patch 1 certain -> unchanged.
    assert out[0, 0, 0, 0] == 1.0 and out[0, 1, 0, 0] == 0.5
    assert out[0, 0, 0, 1] == probs[0, 0, 0, 1]
    # Image 1: patch 0 salient -> unchanged.
    assert out[1, 0, 0, 0] == 0.5
    assert torch.equal(probs[1], torch.tensor([[0.5, 0.995], [0.5, 0.005]]).reshape(2, 1, 2))


def test_batch_equals_per_image(seg):
    images = [rgb(48, 64, s) for s in range(3)]
    batch = seg.segment_batch(images)
    for img, res in zip(images, batch, strict=True):
        single = seg.segment(img)
        assert np.allclose(single.patch_probs, res.patch_probs, atol=1e-5)
        assert np.array_equal(single.labels, res.labels)


def test_mixed_sizes_in_one_batch(seg):
    out = seg.segment_batch([rgb(32, 48), rgb(40, 40), rgb(32, 48, 1)])
    assert [r.labels.shape for r in out] == [(32, 48), (40, 40), (32, 48)]


def test_result_fields(seg):
    res = seg.segment(rgb(50, 70))
    assert res.labels.shape == (50, 70) and res.labels.dtype == np.uint16
    assert res.confidence.shape == (50, 70) and res.confidence.dtype == np.float32
    assert res.patch_probs.shape == (4, 4, 5)
    assert res.class_ids == (0, 1, 2, 3) and res.class_names[0] == "background"
    assert set(np.unique(res.labels)) <= {0, 1, 2, 3}
    assert abs(sum(s.pixel_fraction for s in res.stats) + (res.labels == 0).mean() - 1) < 1e-6
    for stat in res.stats:
        mask = res.labels == stat.class_id
        if mask.any():
            assert np.isclose(stat.mean_confidence, res.confidence[mask].mean(), atol=1e-5)
        assert np.isclose(stat.presence, res.patch_probs[res.class_ids.index(stat.class_id)].max())


def test_threshold_labels_unconfident_pixels_zero(tmp_path):
    seg = tiny_segmenter(tmp_path, threshold=1.0, background=False)
    seg.set_prompts(["a", "b"])
    res = seg.segment(rgb(32, 32))
    assert np.all(res.labels[res.confidence < 1.0] == 0)


def test_input_size_resizes_but_output_keeps_input_resolution(tmp_path):
    seg = tiny_segmenter(tmp_path, input_size=32)
    seg.set_prompts(["a", "b"])
    res = seg.segment(rgb(64, 96))
    assert res.labels.shape == (64, 96)
    assert res.patch_probs.shape[1:] == (2, 3)  # 32 x 48 after resizing


def test_slide_mode_covers_image(tmp_path):
    seg = tiny_segmenter(tmp_path, mode="slide", window=32, stride=16)
    seg.set_prompts(["a", "b"])
    res = seg.segment(rgb(40, 72))
    assert res.labels.shape == (40, 72)
    assert res.patch_probs.shape == (3, 3, 5)


def test_window_layout():
    assert window_starts(448, 448, 224) == [0]
    assert window_starts(600, 448, 224) == [0, 152]
    assert window_starts(1000, 448, 224) == [0, 224, 448, 552]
    boxes = windows(448, 597, 448, 224)
    assert boxes == [(0, 448, 0, 448), (0, 448, 149, 597)]
    assert short_side_size(480, 640, 448) == (448, 597)
    assert short_side_size(480, 640, 0) == (480, 640)
    assert short_side_size(448, 448, 448) == (448, 448)
    # Very thin frames: the long side is capped at 2048 for 448 (the paper's resize rule).
    assert short_side_size(2, 4000, 448) == (1, 2048)
    assert short_side_size(400, 4000, 448) == (205, 2048)


def test_text_cache_encodes_only_new_names(seg):
    cache = seg.text_cache
    seg.set_prompts(["chair", "person", "table"])
    # computed: encoded, or read from the disk store (core.text_store) an earlier test filled
    before = cache.encoded_names + cache.loaded_names
    seg.set_prompts(["chair", "person", "table", "lamp"])
    assert cache.encoded_names + cache.loaded_names == before + 1
    seg.set_prompts(["person", "chair"])
    assert cache.encoded_names + cache.loaded_names == before + 1


def test_trimmed_text_encoder_equals_open_clip(seg):
    tokens = seg.tokenizer(["a photo of a chair.", "a bad photo of the door handle in a kitchen."])
    with torch.no_grad():
        ours = seg.text_cache.encoder(tokens)
        ref = seg.clip.encode_text(tokens)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_ids_stable_across_changes():
    vocab = Vocabulary()
    first = vocab.assign(["chair", "table", "person"]).as_dict()
    second = vocab.assign(["person", "door", "chair"]).as_dict()
    assert second["chair"] == first["chair"] and second["person"] == first["person"]
    assert second["door"] not in first.values()
    third = vocab.assign(["table"]).as_dict()  # a removed name gets its old id back
    assert third["table"] == first["table"]
    assert vocab.snapshot.version == 3


def test_set_prompts_refusal_keeps_previous_vocabulary(seg):
    seg.set_prompts(["chair", "person"])
    before = seg.snapshot
    for bad in ([], ["chair", "  chair "], ["", "x"], ["ok", "bad\x07"], ["background"],
                ["word " * 80]):
        with pytest.raises(VocabularyError):
            seg.set_prompts(bad)
        assert seg.snapshot == before


def test_validation_messages_and_normalisation():
    assert validate_prompts(["  door   handle ", "Chair"]) == ["door handle", "Chair"]
    with pytest.raises(VocabularyError, match="duplicates"):
        validate_prompts(["Chair", "chair"])
    with pytest.raises(VocabularyError, match="empty"):
        validate_prompts(["  "])
    with pytest.raises(VocabularyError, match="limit"):
        validate_prompts([f"c{i}" for i in range(300)], max_prompts=256)
    assert validate_prompts(["café", "<b>x</b>"]) == ["café", "<b>x</b>"]


def test_segment_requires_vocabulary(tmp_path):
    seg = tiny_segmenter(tmp_path)
    with pytest.raises(RuntimeError, match="set_prompts"):
        seg.segment(rgb(32, 32))


def test_bad_image_rejected(seg):
    for bad in (np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4), np.uint8),
                np.zeros((4, 4, 3), np.float32)):
        with pytest.raises(ValueError):
            seg.segment(bad)


def test_reconfigure_changes_dynamic_settings_all_or_nothing(tmp_path):
    from ovseg_ros.core import ConfigError

    seg = tiny_segmenter(tmp_path)
    seg.set_prompts(["cat", "dog", "car"])
    before = seg.config
    seg.reconfigure(threshold=0.4, threads=1)
    assert (seg.config.threshold, seg.config.threads) == (0.4, 1)
    assert before.threshold == 0.0  # frozen: a frame holding the old config keeps its values
    seg.segment(np.zeros((32, 32, 3), np.uint8))
    assert torch.get_num_threads() == 1  # applied on the calling thread, per frame
    seg.reconfigure(threads=0)
    seg.segment(np.zeros((32, 32, 3), np.uint8))
    assert torch.get_num_threads() == seg._default_threads
    for bad, fragment in [(dict(threshold=1.5), "threshold=1.5 is outside [0, 1]"),
                          (dict(max_prompts=2), "below the 3 prompts in use"),
                          (dict(model="ViT-L-14"), "model cannot change while running"),
                          (dict(threshold=0.1, max_prompts=0), "max_prompts=0 is outside")]:
        with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            seg.reconfigure(**bad)
        assert seg.config.threshold == 0.4 and seg.config.max_prompts == 256


def test_vocabulary_carry_over_keeps_ids_and_version():
    old = Vocabulary(background=True)
    old.assign(["chair", "table"])
    old.assign(["table", "lamp"])  # chair keeps id 1 reserved
    new = old.carry_over(background=False)
    assert new.snapshot.names == () and new.snapshot.version == 2 and not new.background
    snap = new.assign(["lamp", "chair", "door"])
    assert snap.ids == (3, 1, 4) and snap.version == 3
