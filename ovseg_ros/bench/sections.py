"""Benchmark sections that need no ROS: core (per frame), vocab, clipdiy, memory.

Each returns a JSON-ready dict: `stages` {variant: {stage: {median, p90, min, n}}} in seconds,
`ratios` {name: value} (medians of per-round ratios), and section-specific extras.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ovseg_ros.core import Segmenter
from ovseg_ros.core.text import TextEmbeddingCache
from ovseg_ros.core.tiling import short_side_size
from ovseg_ros.io import decode_image, encode_float, encode_labels

from .baselines import (
    BareEncoder,
    PlainPipeline,
    per_crop_diy,
    plain_text_embeddings,
    sdpa_block,
    vit_gflops,
)
from .images import sample_images
from .timing import discard, interleave, paired_ratio, summarise

# 20 + extra realistic class names (token counts like real vocabularies).
CLASSES = ["person", "chair", "table", "door", "window", "floor", "wall", "ceiling", "lamp",
           "sofa", "bed", "shelf", "plant", "monitor", "keyboard", "cup", "bottle", "bag",
           "car", "bicycle"]
EXTRA = ["traffic cone", "fire extinguisher", "forklift", "pallet", "cardboard box", "ladder",
         "trash can", "stairs", "elevator door", "vending machine", "office chair", "whiteboard"]


def model_input_size(seg: Segmenter, hw: tuple[int, int]) -> tuple[int, int]:
    """What the encoder sees for a frame of size hw: short side resized, padded to the patch."""
    h, w = short_side_size(hw[0], hw[1], seg.config.input_size)
    p = seg.encoder.patch
    return -(-h // p) * p, -(-w // p) * p


def make_plain(seg: Segmenter) -> PlainPipeline:
    active = seg._require_active()
    return PlainPipeline(seg.clip, seg.heads, active.text, active.channel_ids,
                         active.snapshot.background, seg.config.input_size, seg.config.gamma,
                         seg.config.delta)


def bench_core(seg: Segmenter, plain: PlainPipeline | None, size: tuple[int, int], reps: int,
               batches: Sequence[int] = ()) -> dict[str, Any]:
    """Per-frame pipeline (decode -> segment -> encode) vs bare encoder vs plain fp32."""
    images = sample_images(size)
    rgb = images[0]
    h, w = size
    data = bytearray(rgb.tobytes())  # what a sensor_msgs/Image rgb8 carries (writable)
    max_id = max(seg._require_active().channel_ids)
    enc_size = model_input_size(seg, size)
    bare = BareEncoder(seg.clip.visual, enc_size)
    pixels = torch.randn(1, 3, *enc_size, device=seg.runtime.device).to(seg.runtime.dtype)

    def pipeline() -> dict[str, float]:
        t0 = time.perf_counter()
        frame = decode_image("rgb8", h, w, w * 3, False, data)
        t1 = time.perf_counter()
        res = seg.segment(frame)
        t2 = time.perf_counter()
        encode_labels(res.labels, max_id=max_id).as_array()
        encode_float(res.confidence).as_array()
        t3 = time.perf_counter()
        return {"decode": t1 - t0, **res.timings, "encode": t3 - t2, "segment": t2 - t1}

    variants = {"pipeline": pipeline, "bare_encoder": discard(bare, pixels)}
    if plain is not None:
        variants["plain_fp32"] = discard(plain, rgb)
    samples = interleave(variants, reps, device=seg.runtime.device)
    p = samples["pipeline"]
    ratios = {"pipeline_vs_bare": paired_ratio(p["segment"], samples["bare_encoder"]["total"]),
              "pipeline_with_codec_vs_bare": paired_ratio(p["total"],
                                                         samples["bare_encoder"]["total"])}
    bare_s = float(np.median(samples["bare_encoder"]["total"]))
    fwd_s = float(np.median(p["clip_forward"]))
    gflop = vit_gflops(seg.clip.visual, enc_size)
    ours = vit_gflops(seg.clip.visual, enc_size, value_path_last=True)
    out: dict[str, Any] = {"size": list(size), "encoder_input": list(enc_size),
                           "encoder_gflop": gflop,
                           "achieved_gflops": {"bare_encoder": gflop / bare_s,
                                               "clip_forward": ours / fwd_s}}
    # Ratio of best times: each variant's cost with the least interference from neighbours.
    ratios["pipeline_vs_bare_min"] = min(p["segment"]) / min(samples["bare_encoder"]["total"])
    if plain is not None:
        ratios["plain_fp32_vs_pipeline"] = paired_ratio(samples["plain_fp32"]["total"],
                                                        p["segment"])
        ratios["plain_fp32_vs_pipeline_min"] = min(samples["plain_fp32"]["total"]) / min(
            p["segment"])
        out["labels_vs_fp32"] = label_agreement(seg, plain, images)
    if batches:
        out["batch"] = bench_batch(seg, rgb, batches, max(2, reps // 2))
        if torch.get_num_threads() > 1:
            out["threads"] = bench_threads(seg, rgb, bare, pixels, max(2, reps // 2))
    out.update(stages=summarise(samples), ratios=ratios)
    return out


def label_agreement(seg: Segmenter, plain: PlainPipeline, images: list[np.ndarray]
                    ) -> dict[str, float]:
    """Pixel share whose label equals the fp32 reference (all pixels, and those where the fp32
    top-1 class leads the second by > 0.1), and the largest patch-probability change."""
    agree, sure, sure_share, diff = [], [], [], []
    for img in images:
        a, b = seg.segment(img), plain(img)
        same = a.labels == b["labels"]
        clear = b["margin"] > 0.1
        agree.append(float(same.mean()))
        sure_share.append(float(clear.mean()))
        if clear.any():
            sure.append(float(same[clear].mean()))
        diff.append(float(np.abs(a.patch_probs - b["patch_probs"]).max()))
    return {"pixel_agreement_mean": float(np.mean(agree)), "pixel_agreement_min": min(agree),
            "agreement_where_margin_gt_0.1": float(np.mean(sure)) if sure else float("nan"),
            "share_margin_gt_0.1": float(np.mean(sure_share)),
            "patch_prob_maxdiff": max(diff), "images": len(images)}


def bench_batch(seg: Segmenter, rgb: np.ndarray, batches: Sequence[int], reps: int
                ) -> dict[str, Any]:
    """Throughput of one forward for several same-size frames (several cameras)."""
    variants = {f"batch{b}": discard(seg.segment_batch, [rgb] * b) for b in batches}
    samples = interleave(variants, reps, device=seg.runtime.device)
    fps = {name: b / float(np.median(samples[name]["total"]))
           for name, b in zip(variants, batches, strict=True)}
    base = f"batch{batches[0]}"
    return {"stages": summarise(samples), "images_per_s": fps,
            "ratios": {f"{n}_throughput_vs_{base}": fps[n] / fps[base] for n in fps}}


def bench_threads(seg: Segmenter, rgb: np.ndarray, bare: BareEncoder, pixels: torch.Tensor,
                  reps: int) -> dict[str, Any]:
    """The same work on 1 thread and on all of them (on a busy machine 1 can win). The pipeline
    gets its count through the `threads` setting, as a user sets it (segment applies it to the
    calling thread, onnxruntime included); the bare encoder through torch directly."""
    full = torch.get_num_threads()
    setting = seg.config.threads

    def on(threads: int, fn: Any, *args: Any) -> Any:
        def call() -> None:
            torch.set_num_threads(threads)
            seg.reconfigure(threads=threads)
            try:
                fn(*args)
            finally:
                seg.reconfigure(threads=setting)
                torch.set_num_threads(full)
        return call

    variants = {f"pipeline_{full}t": on(full, seg.segment, rgb),
                "pipeline_1t": on(1, seg.segment, rgb),
                f"bare_encoder_{full}t": on(full, bare, pixels),
                "bare_encoder_1t": on(1, bare, pixels)}
    samples = interleave(variants, reps, device=seg.runtime.device)
    return {"stages": summarise(samples), "ratios": {
        f"pipeline_1t_vs_{full}t": paired_ratio(samples["pipeline_1t"]["total"],
                                               samples[f"pipeline_{full}t"]["total"]),
        f"bare_encoder_1t_vs_{full}t": paired_ratio(samples["bare_encoder_1t"]["total"],
                                                   samples[f"bare_encoder_{full}t"]["total"])}}


def bench_vocab(seg: Segmenter, plain_clip: torch.nn.Module | None, reps: int
                ) -> dict[str, Any]:
    """Adding one class to a 20-class vocabulary, and encoding 20 classes from scratch."""
    base = CLASSES[:20]
    seg.set_prompts(base)
    extra = (f"{n} {k}" if k else n for k, n in
             ((k, n) for k in itertools.count() for n in EXTRA))

    def add_one() -> None:
        seg.set_prompts([*base, next(extra)])

    def scratch() -> None:
        TextEmbeddingCache(seg.clip, seg.tokenizer, seg.runtime).embed(base)

    def add_one_with(reuse_prefixes: bool = True, threads: int = 0) -> Any:
        def call() -> None:
            full = torch.get_num_threads()
            seg.text_cache.reuse_prefixes = reuse_prefixes and usable
            torch.set_num_threads(threads or full)
            try:
                add_one()
            finally:
                seg.text_cache.reuse_prefixes = usable
                torch.set_num_threads(full)
        return call

    usable = seg.text_cache.reuse_prefixes
    variants = {"add_one_to_20": add_one, "add_one_full_prompts": add_one_with(False)}
    if torch.get_num_threads() > 1:
        variants["add_one_1thread"] = add_one_with(True, 1)
    if plain_clip is not None:
        plain_names = (f"plain {n} {k}" for k in itertools.count() for n in EXTRA)
        variants["plain_fp32_add_one"] = lambda: discard(plain_text_embeddings, plain_clip,
                                                         seg.tokenizer, [next(plain_names)])()
    samples = interleave(variants, reps, device=seg.runtime.device)
    samples.update(interleave({"scratch_20": scratch}, max(1, reps // 3),
                              device=seg.runtime.device))
    base_s = samples["add_one_to_20"]["total"]
    ratios = {f"{k}_vs_add_one": paired_ratio(samples[k]["total"], base_s)
              for k in variants if k not in ("add_one_to_20", "plain_fp32_add_one")}
    if plain_clip is not None:
        ratios["plain_fp32_vs_add_one"] = paired_ratio(samples["plain_fp32_add_one"]["total"],
                                                       samples["add_one_to_20"]["total"])
    seg.set_prompts(base)
    return {"stages": summarise(samples), "ratios": ratios,
            "prompts_per_class": len(seg.text_cache.templates)}


def bench_clipdiy(seg: Segmenter, size: tuple[int, int], reps: int, warmup: int = 1,
                  fp32_clip: torch.nn.Module | None = None) -> dict[str, Any]:
    """A CLIP-DIY keyframe (crops batched, the product default) vs a per-crop loop on the same
    CLIP and dtype (what batching alone buys), vs the seed's fp32 per-crop loop when
    `fp32_clip` is given, and all crops in one forward (`batched_all`)."""
    try:
        from ovseg_ros.core.fusion import ClipDiyStage
    except ImportError as exc:  # the keyframe code is optional in older trees
        return {"skipped": f"CLIP-DIY not available: {exc}"}
    stage = ClipDiyStage(seg)
    rgb = sample_images(size, 1)[0]
    result = seg.segment(rgb)
    stage.prepare(list(result.class_names))
    text = stage.diy.text(result.class_names)
    cfg = stage.diy.config
    default_batch, used_batch = cfg.max_batch, stage.diy.batch_size()
    crops = sum(lay.count for lay in stage.diy.layouts(*cfg.image_size))
    geometry = (tuple(cfg.image_size), tuple(cfg.crop_sizes))

    def batched(max_batch: int) -> Any:
        def call() -> None:  # the stage's (frozen) config swapped for the call
            stage.diy.config = replace(cfg, max_batch=max_batch)
            try:
                stage(rgb, result)
            finally:
                stage.diy.config = cfg
        return call

    variants = {"batched": batched(default_batch),
                "batched_all": batched(crops),
                "per_crop_loop": discard(per_crop_diy, seg.clip, rgb, text, *geometry,
                                         seg.runtime.dtype)}
    if fp32_clip is not None:
        variants["per_crop_loop_fp32"] = discard(per_crop_diy, fp32_clip, rgb, text, *geometry,
                                                 torch.float32)
    samples = interleave(variants, reps, warmup, device=seg.runtime.device)
    ratios = {name + "_vs_batched": paired_ratio(samples[name]["total"],
                                                 samples["batched"]["total"])
              for name in variants if name != "batched"}
    per_crop = vit_gflops(stage.diy.clip.visual, stage.diy.input_size)
    best = min(float(np.median(v["total"])) for k, v in samples.items() if "loop" not in k)
    return {"stages": summarise(samples), "crops": crops, "max_batch": used_batch,
            "encoder_gflop": per_crop * crops, "achieved_gflops": per_crop * crops / best,
            "ratios": ratios}


def bench_compile(seg: Segmenter, size: tuple[int, int], reps: int) -> dict[str, Any]:
    """torch.compile (inductor, default mode) of the dense CLIP encoder vs eager, same input.

    Opt-in (`--only compile`): compiling needs a C++ toolchain and tens of seconds."""
    enc_size = model_input_size(seg, size)
    pixels = torch.randn(1, 3, *enc_size, device=seg.runtime.device).to(seg.runtime.dtype)
    t0 = time.perf_counter()
    try:
        compiled = torch.compile(seg.encoder, dynamic=False)
        with torch.inference_mode():
            compiled(pixels)
    except Exception as exc:  # no compiler, unsupported backend
        return {"skipped": f"torch.compile failed: {type(exc).__name__}: {exc}"[:300]}
    compile_s = time.perf_counter() - t0

    def run(fn: Any) -> Any:
        def call() -> None:
            with torch.inference_mode():
                fn(pixels)
        return call

    samples = interleave({"eager": run(seg.encoder), "compiled": run(compiled)}, reps,
                         device=seg.runtime.device)
    return {"encoder_input": list(enc_size), "compile_s": compile_s,
            "stages": summarise(samples),
            "ratios": {"eager_vs_compiled": paired_ratio(samples["eager"]["total"],
                                                         samples["compiled"]["total"])}}


def bench_attention(seg: Segmenter, size: tuple[int, int], reps: int) -> dict[str, Any]:
    """One transformer block as open_clip runs it (nn.MultiheadAttention, whose inference fast
    path is PyTorch's native MHA) vs the same block through F.scaled_dot_product_attention.

    Opt-in (`--only attention`): the product keeps whichever is faster on the machine at hand;
    on the 2-core AVX512-BF16 CPU that is open_clip's own path."""
    enc_size = model_input_size(seg, size)
    patch = seg.encoder.patch
    n = 1 + (enc_size[0] // patch) * (enc_size[1] // patch)
    block = seg.clip.visual.transformer.resblocks[0]
    width = block.attn.embed_dim
    x = torch.randn(1, n, width, device=seg.runtime.device).to(seg.runtime.dtype)

    def run(fn: Any) -> Any:
        def call() -> None:
            with torch.inference_mode():
                fn(x)
        return call

    with torch.inference_mode():
        ref = block(x).float()
        diff = float((ref - sdpa_block(block, x).float()).abs().max() / ref.abs().max())
    samples = interleave({"module": run(block), "sdpa": run(lambda t: sdpa_block(block, t))},
                         reps, device=seg.runtime.device)
    return {"tokens": n, "max_rel_diff": diff, "stages": summarise(samples),
            "ratios": {"module_vs_sdpa": paired_ratio(samples["module"]["total"],
                                                      samples["sdpa"]["total"])}}
