"""The fast core equals a plain loop implementation of the methods as doc/architecture.md
states them (fp32, whole image, no resizing), with and without background, square and
non-square, sizes not divisible by 16, with the dense encoder on both backends: torch, and its
ONNX export on onnxruntime (which CI installs: a missing onnxruntime fails these tests, it never
skips them)."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from helpers.reference_dinoiser import reference_patch_probs, text_embeddings
from helpers.tiny_models import random_head_state, tiny_segmenter

PROMPTS = ["chair", "person", "door handle", "potted plant"]


BACKENDS = ["torch", "onnxruntime"]


@pytest.fixture(scope="module", params=BACKENDS)
def tiny(request, tmp_path_factory):
    """{background: Segmenter} on the tiny model for each backend (configs are frozen: one
    Segmenter per setting)."""
    folder = tmp_path_factory.mktemp("tiny")
    segs = {bg: tiny_segmenter(folder, background=bg, backend=request.param)
            for bg in (False, True)}
    assert all(s.runtime.backend == request.param for s in segs.values())
    return segs


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth blobs rather than noise, so patches correlate and pooling does real work.
    base = rng.integers(0, 256, size=(max(h // 8, 1) + 1, max(w // 8, 1) + 1, 3)).astype(np.uint8)
    import cv2

    return cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("background", [False, True])
@pytest.mark.parametrize("size", [(64, 64), (48, 96), (50, 70), (33, 17)])
def test_patch_probs_match_reference(tiny, size, background):
    seg = tiny[background]
    seg.set_prompts(PROMPTS)
    rgb = _image(*size, seed=sum(size))
    got = torch.from_numpy(seg.segment(rgb).patch_probs)
    heads_state = {k: v.float() for k, v in seg.heads.state_dict().items()}
    names = (["background"] if background else []) + PROMPTS
    with torch.no_grad():
        text = text_embeddings(seg.clip, seg.tokenizer, names)
        want = reference_patch_probs(seg.clip, heads_state, text, rgb, background)
    assert got.shape == want.shape == (len(names), -(-size[0] // 16), -(-size[1] // 16))
    assert torch.allclose(got, want, atol=1e-4), float((got - want).abs().max())
    # A meaningful comparison: the probabilities are not all uniform.
    assert float(want.max()) > 1.5 / len(names)


def test_background_rule_fires_in_reference_comparison(tmp_path):
    """With objectness forced low, uncertain patches must become background (value 1.0)."""
    state = random_head_state()
    state["bkg_decoder.bias"] = torch.tensor([-50.0])  # objectness ~ 0 everywhere
    from helpers.tiny_models import tiny_files, write_heads

    name, clip, _ = tiny_files(tmp_path)
    heads = write_heads(tmp_path / "low_objectness.pt", state=state)
    seg = tiny_segmenter(tmp_path, heads=str(heads), delta=1.0)
    seg.set_prompts(PROMPTS)
    probs = seg.segment(_image(64, 80, 3)).patch_probs
    assert np.all(probs[0] == 1.0)


@pytest.mark.slow
def test_real_vit_b16_architecture_matches_reference(tmp_path):
    """The default architecture (ViT-B-16, 768 wide) with random weights, one small image, on
    both backends (one reference: it is the slow part)."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None)
    weights = tmp_path / "vitb16.pt"
    torch.save(model.state_dict(), weights)
    from helpers.tiny_models import write_heads

    heads = write_heads(tmp_path / "heads768.pt", width=768)
    from ovseg_ros.core import Segmenter, SegmenterConfig

    rgb, want = _image(40, 56, 7), None
    for backend in BACKENDS:
        seg = Segmenter(SegmenterConfig(model="ViT-B-16", clip_weights=str(weights),
                                        heads=str(heads), device="cpu", precision="fp32",
                                        input_size=0, backend=backend,
                                        cache_dir=str(tmp_path / "cache")))
        assert seg.runtime.backend == backend
        seg.set_prompts(["cat", "dog"])
        got = torch.from_numpy(seg.segment(rgb).patch_probs)
        if want is None:
            heads_state = {k: v.float() for k, v in seg.heads.state_dict().items()}
            with torch.no_grad():
                text = text_embeddings(seg.clip, seg.tokenizer, ["background", "cat", "dog"])
                want = reference_patch_probs(seg.clip, heads_state, text, rgb, True)
        assert torch.allclose(got, want, atol=1e-4), (backend, float((got - want).abs().max()))
        del seg
