"""CLIP-DIY core: batched crops equal a plain per-crop loop, crop geometry, the saliency rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.tiny_models import TINY, tiny_files, tiny_segmenter

from ovseg_ros.core import ConfigError, WeightsError
from ovseg_ros.core.clipdiy import (
    ClipDiy,
    ClipDiyConfig,
    crop_layout,
    cut_crops,
    grid_to_pixels,
    saliency_fusion,
)
from ovseg_ros.core.maskclip import CLIP_MEAN, CLIP_STD, GlobalClipEncoder

NAMES = ("background", "chair", "person", "table")


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    s = tiny_segmenter(tmp_path_factory.mktemp("clipdiy"))
    s.set_prompts(["chair", "person", "table"])
    return s


def reference_scores(diy: ClipDiy, images: torch.Tensor, names) -> torch.Tensor:
    """The plain algorithm: one crop at a time, one encode_image per crop, numpy interpolation
    between crop centres per row and column, weighted mean of the scales."""
    cfg = diy.config
    h, w = cfg.image_size
    images = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False,
                           antialias=True)
    text = F.normalize(torch.stack([
        diy.clip.encode_text(diy.text_cache.tokenizer([cfg.template.format(n)]))[0]
        for n in names]).float(), dim=-1)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    out = np.zeros((images.shape[0], len(names), h, w))
    for size, stride, weight in zip(cfg.crop_sizes, cfg.strides(), cfg.weights_per_scale(),
                                    strict=True):
        side = min(size, h, w)
        ys = list(range(0, h - side, stride)) + [h - side]
        xs = list(range(0, w - side, stride)) + [w - side]
        for b in range(images.shape[0]):
            grid = np.zeros((len(names), len(ys), len(xs)))
            for i, y in enumerate(ys):
                for j, x in enumerate(xs):
                    crop = images[b:b + 1, :, y:y + side, x:x + side]
                    if side != diy.input_size[0]:
                        crop = F.interpolate(crop, size=diy.input_size, mode="bicubic",
                                             align_corners=False,
                                             antialias=side > diy.input_size[0]).clamp(0, 1)
                    emb = F.normalize(diy.clip.encode_image((crop - mean) / std).float(), dim=-1)
                    grid[:, i, j] = (emb @ text.t())[0].numpy()
            cy = np.array(ys) + side / 2
            cx = np.array(xs) + side / 2
            rows = np.stack([[np.interp(np.arange(w) + 0.5, cx, grid[c, i]) for i in range(len(ys))]
                             for c in range(len(names))])  # (C, ny, W)
            pix = np.stack([[np.interp(np.arange(h) + 0.5, cy, rows[c, :, x]) for x in range(w)]
                            for c in range(len(names))])  # (C, W, H)
            out[b] += weight * pix.transpose(0, 2, 1)
    return torch.from_numpy(out / sum(cfg.weights_per_scale())).float()


@torch.inference_mode()
def test_global_encoder_equals_open_clip_encode_image(seg):
    """The class-token-only last block changes nothing: same embedding as encode_image."""
    import open_clip

    torch.manual_seed(3)
    big = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    for visual, model in ((seg.clip.visual, seg.clip), (big.visual, big)):
        size = visual.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        pixels = torch.randn(3, 3, *size)
        want = model.encode_image(pixels)
        got = GlobalClipEncoder(visual)(pixels)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 1e-4 * want.abs().max().item()


@torch.inference_mode()
def test_batched_crops_equal_per_crop_loop(seg):
    cfg = ClipDiyConfig(image_size=(60, 76), crop_sizes=(64, 32, 16), crop_strides=(32, 16, 12),
                        scale_weights=(1.0, 2.0, 0.5))
    diy = ClipDiy.from_segmenter(seg, cfg)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 90, 110)
    batched = diy.score_maps(images, NAMES)
    assert batched.shape == (2, 4, 60, 76)
    ref = reference_scores(diy, images, NAMES)
    assert (batched - ref).abs().max().item() < 1e-5
    # and the fused probabilities agree too
    saliency = torch.rand(2, 60, 76)
    probs = diy.probabilities(images, NAMES, saliency)
    expected = saliency_fusion(ref, saliency, 0, cfg.logit_scale)
    assert (probs - expected).abs().max().item() < 1e-4
    assert torch.allclose(probs.sum(dim=1), torch.ones(2, 60, 76), atol=1e-5)


@torch.inference_mode()
@pytest.mark.parametrize("max_batch", [0, 64, 16])
def test_default_is_paper_layout_in_batched_encode_calls(seg, monkeypatch, max_batch):
    diy = ClipDiy.from_segmenter(seg, ClipDiyConfig(max_batch=max_batch))
    assert diy.clip is seg.clip  # reused, no second model
    assert diy.input_size == tuple(seg.clip.visual.image_size)
    layouts = diy.layouts(256, 256)
    assert [lay.count for lay in layouts] == [1, 9, 49]
    assert [lay.crop for lay in layouts] == [256, 128, 64]
    calls = []
    original = diy.image_encoder.forward

    def spy(pixels, *args, **kwargs):
        calls.append(tuple(pixels.shape))
        return original(pixels, *args, **kwargs)

    monkeypatch.setattr(diy.image_encoder, "forward", spy)
    maps = diy.score_maps(torch.rand(1, 3, 120, 160), NAMES)
    assert maps.shape == (1, 4, 256, 256)
    # Every crop of every scale goes through encode_image in chunks of the batch size (CPU
    # default 4), never one call per crop.
    step = max_batch or 4
    sizes = [min(step, 59 - i) for i in range(0, 59, step)]
    assert calls == [(n, 3, 64, 64) for n in sizes]


def test_crop_geometry_uneven_sizes():
    h, w = 250, 300
    expected = {256: (1, 2), 128: (3, 4), 64: (7, 9)}
    for crop, (ny, nx) in expected.items():
        lay = crop_layout(h, w, crop, crop // 2)
        assert (len(lay.ys), len(lay.xs)) == (ny, nx)
        side = min(crop, h, w)
        assert lay.crop == side
        cover = np.zeros((h, w), dtype=int)
        for y in lay.ys:
            for x in lay.xs:
                assert 0 <= y and y + side <= h and 0 <= x and x + side <= w
                cover[y:y + side, x:x + side] += 1
        assert cover.min() >= 1, f"crop {crop} leaves pixels uncovered"
        assert lay.ys[-1] + side == h and lay.xs[-1] + side == w  # last crop pushed inside
        assert cover.sum() == ny * nx * side * side
    assert crop_layout(250, 300, 128, 64).ys == (0, 64, 122)


def test_cut_crops_is_a_gather_of_slices():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 50, 70)
    lay = crop_layout(50, 70, 24, 10)
    crops = cut_crops(img, lay)
    assert crops.shape == (2 * lay.count, 3, 24, 24)
    k = 0
    for b in range(2):
        for y in lay.ys:
            for x in lay.xs:
                assert torch.equal(crops[k], img[b, :, y:y + 24, x:x + 24])
                k += 1


def test_grid_interpolation_between_crop_centres():
    lay = crop_layout(250, 300, 128, 64)  # centres y 64, 128, 186; x 64, 128, 192, 236
    cy, cx = lay.centres()
    grid = (cy[:, None] + 0 * cx[None, :]).float()[None, None]  # value = centre's y
    pix = grid_to_pixels(grid, lay, (250, 300))[0, 0]
    y = torch.arange(250) + 0.5
    assert torch.allclose(pix[:, 7], y.clamp(64, 186).float(), atol=1e-4)  # linear, then flat
    assert torch.allclose(pix, pix[:, :1].expand_as(pix))


def test_saliency_fusion_hand_made():
    scores = torch.tensor([0.30, 0.20, 0.25]).view(1, 3, 1, 1).repeat(1, 1, 1, 2)
    saliency = torch.tensor([[[0.2, 0.9]]])
    out = saliency_fusion(scores, saliency, background=0, logit_scale=10.0)
    for x, s in enumerate((0.2, 0.9)):
        logits = [10 * 0.30 * (1 - s), 10 * 0.20 * s, 10 * 0.25 * s]
        z = sum(math.exp(v) for v in logits)
        expected = torch.tensor([math.exp(v) / z for v in logits])
        assert torch.allclose(out[0, :, 0, x], expected, atol=1e-6)
    assert out[0, :, 0, 0].argmax() == 0 and out[0, :, 0, 1].argmax() == 2
    # another background channel index, and no background: plain softmax of the raw scores
    out = saliency_fusion(scores, saliency, background=2, logit_scale=10.0)
    logits = torch.tensor([0.30 * 0.2, 0.20 * 0.2, 0.25 * 0.8]) * 10
    assert torch.allclose(out[0, :, 0, 0], torch.softmax(logits, 0), atol=1e-6)
    plain = saliency_fusion(scores, saliency, background=None, logit_scale=10.0)
    assert torch.allclose(plain[0, :, 0, 0], torch.softmax(10 * scores[0, :, 0, 0], 0))


def test_text_cache_single_template_per_name(seg):
    diy = ClipDiy.from_segmenter(seg, ClipDiyConfig(template="a photo of a {}."))
    assert diy.text_cache.templates == ("a photo of a {}.",)
    diy.text(["chair", "person"])
    diy.text(["person", "chair", "lamp"])
    # Each name computed once: encoded now, or read from the disk store an earlier test filled.
    assert diy.text_cache.encoded_names + diy.text_cache.loaded_names == 3


def test_separate_clip_model_loaded_through_weights(seg, tmp_path):
    _, clip_file, _ = tiny_files(tmp_path)
    diy = ClipDiy.from_segmenter(seg, ClipDiyConfig(), TINY, str(clip_file))
    assert diy.clip is not seg.clip
    assert diy.text(["chair"]).shape == (1, 32)
    random = ClipDiy.from_segmenter(seg, None, TINY, "random")
    assert random.score_maps(torch.rand(1, 3, 40, 40), NAMES).shape == (1, 4, 256, 256)
    with pytest.raises(WeightsError, match="neither a file nor a pretrained tag"):
        ClipDiy.from_segmenter(seg, None, TINY, "no_such_tag")
    with pytest.raises(WeightsError, match="not found"):
        ClipDiy.from_segmenter(seg, None, TINY, str(tmp_path / "x.pt"))


@pytest.mark.parametrize("bad", [
    dict(crop_sizes=()), dict(crop_strides=(1, 2)), dict(scale_weights=(0, 0, 0)),
    dict(template="no slot"), dict(logit_scale=0.0), dict(image_size=(0, 10)),
])
def test_config_validation(bad):
    with pytest.raises(ConfigError):
        ClipDiyConfig(**bad)
