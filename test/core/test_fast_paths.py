"""The speed-ups in the core compute the same thing as the straightforward code they replace."""

from __future__ import annotations

import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import tiling
from ovseg_ros.core.text import TextEmbeddingCache

NAMES = ["chair", "traffic cone", "fire extinguisher", "x-ray", "a b c d e f", "{odd} name!"]


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    return tiny_segmenter(tmp_path_factory.mktemp("fast"))


def test_prefix_reuse_equals_full_prompts_in_fp32(seg):
    fast = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime)
    full = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime)
    full.reuse_prefixes = False
    assert fast.reuse_prefixes
    assert torch.allclose(fast.embed(NAMES), full.embed(NAMES), atol=1e-6)
    tokens = seg.tokenizer([t.format("traffic cone") for t in fast.templates])
    template = torch.arange(len(fast.templates))
    assert fast.prefix_encoder.starts_with_prefix(tokens, template).all()


def test_prefix_reuse_with_a_single_template(seg):
    templates = ("a photo of a {}.",)
    fast = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime, templates=templates)
    full = TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime, templates=templates)
    full.reuse_prefixes = False
    assert torch.allclose(fast.embed(NAMES), full.embed(NAMES), atol=1e-6)


@pytest.mark.parametrize("image_hw", [(64, 64), (50, 70), (33, 17), (480, 640), (400, 300),
                                      (200, 1000)])
def test_matmul_upsampling_equals_two_bilinear_passes(image_hw):
    torch.manual_seed(0)
    size = tiling.short_side_size(*image_hw, 48)
    h, w = -(-size[0] // 16), -(-size[1] // 16)
    maps = torch.softmax(3 * torch.randn(2, 5, h, w), dim=1)
    want = tiling.resize(tiling.upsample_patches(maps, 16, size), image_hw)
    got = tiling.upsample_to_image(maps, 16, size, image_hw)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=2e-5)
    agree = (got.argmax(dim=1) == want.argmax(dim=1)).float().mean()
    assert agree > 0.9999


def test_bf16_pooling_stays_close_to_fp32(tmp_path):
    fp32 = tiny_segmenter(tmp_path, background=False)
    bf16 = tiny_segmenter(tmp_path, background=False, precision="bf16")
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 96)
    for s in (fp32, bf16):
        s.set_prompts(["chair", "person", "table"])
    dense, g = bf16.features(x)
    act = bf16._require_active()
    probs, _ = bf16.patch_probabilities(dense, g, act)
    heads = {k: v.float() for k, v in bf16.heads.state_dict().items()}
    fp32.heads.load_state_dict(heads)
    ref, _ = fp32.patch_probabilities(dense.float(), g.float(), act)
    assert probs.dtype == torch.float32
    assert (probs - ref).abs().max() < 0.05
