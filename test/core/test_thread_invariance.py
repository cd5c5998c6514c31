"""Every output of the core has the same bits at any PyTorch thread count (core/reproducible.py):
frames of several sizes in whole and slide mode, fp32 and bf16, with CLIP-DIY keyframes fused,
phrase queries and per-segment feature means; and a text embedding is the same whichever
names it was encoded with."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_files, write_clip_weights

from ovseg_ros.core import FramePipeline, KeyframeConfig, Segmenter, SegmenterConfig
from ovseg_ros.core.features import segment_means
from ovseg_ros.core.query import relevance_maps
from ovseg_ros.core.tiny import TINY_TEXT, register_tiny

SIZES = [(48, 64), (97, 131), (240, 320)]
THREADS = (1, 2, 3)


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def outputs(files, mode: str, precision: str, threads: int) -> dict[str, str]:
    name, clip, heads = files
    torch.set_num_threads(threads)
    cfg = SegmenterConfig(model=name, clip_weights=str(clip), heads=str(heads), device="cpu",
                          precision=precision, backend="torch", cache_dir="", threads=threads,
                          input_size=0 if mode == "whole" else 96, mode=mode, window=64,
                          stride=32)
    seg = Segmenter(cfg)
    seg.text_cache.store_folder = None
    pipe = FramePipeline(seg, KeyframeConfig(keyframes=True, keyframe_every_n=2,
                                             keyframe_on_prompt_change=False,
                                             asynchronous=False))
    pipe.set_prompts(["cat", "dog", "car", "tree", "road"])
    rng = np.random.default_rng(0)
    got = {}
    try:
        for i, (h, w) in enumerate(SIZES * 2):
            r = pipe.process(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), float(i))
            got[f"frame {i} {w}x{h}"] = digest(r.labels, r.confidence, r.patch_probs,
                                               r.objectness)
            if r.features is not None:
                maps = relevance_maps(seg, r, ["cat", "red mug"])
                got[f"query {i}"] = digest(*[m.relevance for m in maps])
                segments = torch.from_numpy(r.labels.astype(np.int64))
                got[f"means {i}"] = digest(segment_means(r.features, segments,
                                                         int(r.labels.max())))
    finally:
        pipe.close()
    return got


@pytest.mark.parametrize("mode,precision", [("whole", "fp32"), ("whole", "bf16"),
                                            ("slide", "fp32")])
def test_every_output_is_the_same_at_any_thread_count(tmp_path, restore_threads, mode,
                                                      precision):
    files = tiny_files(tmp_path)
    want = outputs(files, mode, precision, THREADS[0])
    for threads in THREADS[1:]:
        got = outputs(files, mode, precision, threads)
        assert [k for k in want if got[k] != want[k]] == [], f"{threads} threads"


def test_a_name_encodes_to_the_same_bits_beside_any_names(tmp_path, restore_threads):
    # ViT-B-16's text tower: 7 names are 560 prompts, more than one batch of 256.
    name = register_tiny(tmp_path, TINY_TEXT)
    clip = write_clip_weights(tmp_path / "clip.pt", name)
    cfg = SegmenterConfig(model=name, clip_weights=str(clip), heads="random", device="cpu",
                          precision="fp32", backend="torch", cache_dir="")
    cache = Segmenter(cfg).text_cache
    cache.store_folder = None
    torch.set_num_threads(1)
    alone = cache.embed(["cat"])[0]
    cache._cache.clear()
    torch.set_num_threads(2)
    among = cache.embed(["person", "sky", "dog", "tree", "car", "road", "cat"])[-1]
    assert digest(among) == digest(alone)
