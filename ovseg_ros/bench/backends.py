"""`--only backends`: the dense encoder on torch fp32, onnxruntime fp32 and int8 (the rule's
setting and the other reduce_range), and torch bf16 where native, in one interleaved run.

Reported: frame and clip_forward times, speed vs torch fp32 (median of per-round ratios), each
variant's achieved GFLOP/s against the measured matmul peaks (torch fp32/bf16, onnxruntime
fp32 and u8 x s8 int8), labels and probabilities vs torch fp32 on the benchmark images (random
weights: a numerical proxy, not accuracy), and the export's time and peak RSS in a fresh
process (`python -m ovseg_ros.bench.backends MODEL CACHE_DIR` prints one JSON line).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ovseg_ros.core import Segmenter, SegmenterConfig, tiling
from ovseg_ros.core.backends import Int8Settings, int8_settings, missing_onnx_modules, probe
from ovseg_ros.core.backends.auto import EncoderForwards
from ovseg_ros.core.device import cpu_has_native_bf16, cpu_has_native_fp16, cpu_has_vnni
from ovseg_ros.core.tiny import TINY, register_tiny

from .baselines import vit_gflops
from .images import sample_images
from .memory import high_water_mb
from .shared_cpu import cpu_hog
from .timing import current_rss_mb, interleave, matmul_gflops, paired_ratio, summarise

NOTE = ("weights are seeded random: agreement is a numerical proxy for how far a variant moves "
        "the outputs, not an accuracy figure")


def ort_matmul_gflops(kind: str, threads: int, shape: tuple[int, int, int],
                      reps: int = 20) -> float:
    """Best-of-`reps` (m x k) @ (k x n) in onnxruntime, shape=(m, k, n): fp32 MatMul, or u8 x s8
    MatMulInteger (the kernel under dynamic int8); 2 m k n operations per second / 1e9."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = shape
    rng = np.random.default_rng(0)
    if kind == "fp32":
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        elem, op, out_type = TensorProto.FLOAT, "MatMul", TensorProto.FLOAT
    else:
        a = rng.integers(0, 255, (m, k), dtype=np.uint8)
        b = rng.integers(-127, 127, (k, n), dtype=np.int8)
        elem, op, out_type = TensorProto.UINT8, "MatMulInteger", TensorProto.INT32
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])], "matmul",
        [helper.make_tensor_value_info("a", elem, [m, k])],
        [helper.make_tensor_value_info("y", out_type, [m, n])],
        [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    session.run(None, {"a": a})
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        session.run(None, {"a": a})
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def bench_export(model: str, cache_dir: Path, timeout: float = 900.0) -> dict[str, Any]:
    """Export + int8 quantisation of `model` (seeded random weights) in a fresh process."""
    done = subprocess.run([sys.executable, "-m", "ovseg_ros.bench.backends", model,
                           str(cache_dir)], capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"skipped": f"export child failed ({done.returncode}): "
                           f"{done.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _agreement(a: list, b: list) -> dict[str, float]:
    """Labels of results `a` vs reference results `b`: pixel share equal (all pixels, and
    where the reference's top class leads by > 0.1 in patch probability), and the patch
    probabilities' max and mean absolute difference (the max is often a patch flipping across
    the background rule's thresholds, a jump of up to 1)."""
    same, sure, diff, mean = [], [], [], []
    for x, y in zip(a, b, strict=True):
        same.append(float((x.labels == y.labels).mean()))
        top2 = np.sort(y.patch_probs, axis=0)[-2:]
        clear = (top2[1] - top2[0]) > 0.1
        if clear.any():
            sure.append(float((x.patch_probs.argmax(0) == y.patch_probs.argmax(0))[clear].mean()))
        diff.append(float(np.abs(x.patch_probs - y.patch_probs).max()))
        mean.append(float(np.abs(x.patch_probs - y.patch_probs).mean()))
    return {"pixel_agreement": float(np.mean(same)), "pixel_agreement_min": min(same),
            "patch_agreement_where_margin_gt_0.1": float(np.mean(sure)) if sure else float("nan"),
            "patch_prob_maxdiff": max(diff), "patch_prob_meandiff": float(np.mean(mean)),
            "images": len(a)}


def _feature_cosines(variants: dict[str, tuple[Segmenter, Any]], images: list[np.ndarray]
                     ) -> dict[str, dict[str, float]]:
    """Per-patch cosine of each variant's dense F and head features G to torch fp32's."""
    fp32, dense32 = variants["torch_fp32"]
    with torch.inference_mode():
        pixels = [tiling.resize(fp32.to_tensor(img), fp32.processing_size(img.shape[:2]))
                  for img in images]
        fp32.dense = dense32
        ref = [fp32.features(x) for x in pixels]
        out = {}
        for name, (seg, dense) in variants.items():
            if name == "torch_fp32":
                continue
            seg.dense = dense
            cos = [[F.cosine_similarity(a.float(), b, dim=1) for a, b in
                    zip(seg.features(x), want, strict=True)] for x, want in zip(pixels, ref,
                                                                                 strict=True)]
            out[name] = {f"{k}_{stat}": float(getattr(torch.cat([c[i].flatten() for c in cos]),
                                                      stat)())
                         for i, k in enumerate(("F", "G")) for stat in ("mean", "min")}
    return out


def _variants(model: str, device: str, input_size: int, cache: Path
              ) -> tuple[dict[str, tuple[Segmenter, Any]], dict[str, Any]]:
    """{name: (segmenter, dense forward)}: one fp32 Segmenter whose dense forward is swapped per
    variant (the torch parts stay the same fp32 code), and a bf16 one where native."""
    from ovseg_ros.core.backends.onnx_encoder import OnnxDenseEncoder, build_files

    base = dict(model=model, clip_weights="random", heads="random", device=device,
                input_size=input_size, cache_dir=str(cache))
    fp32 = Segmenter(SegmenterConfig(precision="fp32", backend="torch", **base))
    out: dict[str, tuple[Segmenter, Any]] = {"torch_fp32": (fp32, fp32.dense)}
    info: dict[str, Any] = {"cpu_vnni": cpu_has_vnni(), "cpu_native_bf16": cpu_has_native_bf16()}
    on_cpu = fp32.runtime.device.type == "cpu"
    if not on_cpu or cpu_has_native_bf16():
        bf16 = Segmenter(SegmenterConfig(precision="bf16", backend="torch", **base))
        out["torch_bf16"] = (bf16, bf16.dense)
    if on_cpu and not missing_onnx_modules():
        folder = cache / "onnx"
        rule = int8_settings()
        other = Int8Settings(reduce_range=not rule.reduce_range)
        info["int8_rule"] = asdict(rule)
        for name, int8, settings in (("onnxruntime_fp32", False, None),
                                     ("onnxruntime_int8", True, rule),
                                     ("onnxruntime_int8_reduce_range_" +
                                      str(other.reduce_range).lower(), True, other)):
            report = build_files(fp32.encoder, model, folder, int8, settings)
            out[name] = (fp32, OnnxDenseEncoder(fp32.encoder, report.path))
            if name == "onnxruntime_int8":  # what `onnx_spinning: true` would give
                out[name + "_spinning"] = (fp32, OnnxDenseEncoder(fp32.encoder, report.path,
                                                                   spin=True))
    elif on_cpu:
        info["onnxruntime"] = f"not installed ({', '.join(missing_onnx_modules())})"
    return out, info


def bench_backends(model: str, device: str, size: tuple[int, int], input_size: int,
                   reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ovseg-backends-") as tmp:
        cache = Path(tmp)
        export = bench_export(model, cache) if not missing_onnx_modules() else {}
        variants, info = _variants(model, device, input_size, cache)
        auto = _auto_probe(variants, model, size, cache)
        return _measure(variants, info, export, size, reps, auto)


def _auto_probe(variants: dict[str, Any], model: str, size: tuple[int, int], cache: Path
                ) -> probe.ProbeResult | None:
    """What `backend: auto, precision: auto` decides here: the product's probe, run afresh
    (mode always) on the benchmark's fp32 encoder at the benchmark's frame size, before the
    interleaved timing."""
    seg = variants["torch_fp32"][0]
    if seg.runtime.device.type != "cpu":
        return None
    options = probe.candidates("auto", "auto", onnx=not missing_onnx_modules(),
                               native_bf16=cpu_has_native_bf16(),
                               native_fp16=cpu_has_native_fp16(), int8=False)
    p = seg.encoder.patch
    hw = tuple(-(-v // p) * p for v in seg.processing_size(size))
    prepare = EncoderForwards(seg.clip.visual, model, cache, hw)
    key = probe.probe_key(model, hw, torch.get_num_threads(), options, {})
    return probe.decide(options, prepare, key, None, "always",
                        SegmenterConfig().auto_probe_budget_s)


def _auto_report(auto: probe.ProbeResult | None, samples: dict[str, Any]) -> dict[str, Any]:
    """The probe's choice against the fastest of its candidates in the interleaved run."""
    if auto is None:
        return {}
    names = {n.replace(" ", "_"): n for n in auto.times_ms}
    frame = {n: float(np.median(samples[n]["total"])) for n in names if n in samples}
    best = min(frame, key=frame.get)
    chosen = auto.choice.name.replace(" ", "_")
    return {"choice": chosen, "reason": auto.reason, "probe_ms": auto.times_ms,
            "probe_s": auto.probe_s, "best_in_run": best,
            "choice_frame_ms": 1e3 * frame[chosen], "best_frame_ms": 1e3 * frame[best],
            "choice_over_best": frame[chosen] / frame[best]}


def _shared_core(variants: dict[str, Any], frame, reps: int, idle: dict[str, Any]
                 ) -> dict[str, Any]:
    """Every variant again with one core kept busy by another process (`cpu_hog`)."""
    import os

    names = list(variants)
    load = os.getloadavg()[0]
    with cpu_hog():
        busy = interleave({n: frame(n) for n in names}, reps, warmup=1)
    return {"reps": reps, "load_before": load, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "frame_ms": {n: 1e3 * float(np.median(busy[n]["total"])) for n in names},
            "slowdown_vs_idle": {n: float(np.median(busy[n]["total"])
                                          / np.median(idle[n]["total"])) for n in names}}


def _peaks(variants: dict[str, Any], dev: torch.device, shape: tuple[int, int, int]
           ) -> dict[str, float]:
    threads = torch.get_num_threads()
    peaks = {"torch_fp32": matmul_gflops(torch.float32, dev, shape=shape)}
    if "torch_bf16" in variants:
        peaks["torch_bf16"] = matmul_gflops(torch.bfloat16, dev, shape=shape)
    if "onnxruntime_fp32" in variants:
        peaks["onnxruntime_fp32"] = ort_matmul_gflops("fp32", threads, shape)
        peaks["onnxruntime_int8_u8s8"] = ort_matmul_gflops("int8", threads, shape)
    return peaks


def _measure(variants: dict[str, tuple[Segmenter, Any]], info: dict[str, Any],
             export: dict[str, Any], size: tuple[int, int], reps: int,
             auto: probe.ProbeResult | None = None) -> dict[str, Any]:
    fp32 = variants["torch_fp32"][0]
    names = list(variants)
    for name in names:
        variants[name][0].set_prompts(["person", "chair", "table", "door", "window", "floor",
                                       "wall", "lamp", "sofa", "plant"])
    images = sample_images(size)

    def frame(name: str):
        seg, dense = variants[name]

        def call() -> dict[str, float]:
            seg.dense = dense
            return seg.segment(images[0]).timings
        return call

    results = {}
    for name in names:  # warm-up, and the agreement inputs
        frame(name)()
        seg, dense = variants[name]
        seg.dense = dense
        results[name] = [seg.segment(img) for img in images]
    p = fp32.encoder.patch
    h, w = fp32.processing_size(size)
    enc = (-(-h // p) * p, -(-w // p) * p)
    gflop = vit_gflops(fp32.clip.visual, enc, value_path_last=True)
    # The encoder's own largest GEMM: tokens x width @ width x mlp width (the MLP's first layer)
    mlp = fp32.clip.visual.transformer.resblocks[0].mlp.c_fc
    shape = (1 + (enc[0] // p) * (enc[1] // p), mlp.in_features, mlp.out_features)
    before = _peaks(variants, fp32.runtime.device, shape)
    samples = interleave({n: frame(n) for n in names}, reps, warmup=0,
                         device=fp32.runtime.device)
    shared = (_shared_core(variants, frame, max(2, reps // 2), samples)
              if fp32.runtime.device.type == "cpu" else {})
    fp32.dense = variants["torch_fp32"][1]
    after = _peaks(variants, fp32.runtime.device, shape)  # best of two: load varies
    peaks = {k: max(v, after[k]) for k, v in before.items()}
    base = samples["torch_fp32"]["total"]
    ratios = {f"{n}_speed_vs_torch_fp32": paired_ratio(base, samples[n]["total"])
              for n in names if n != "torch_fp32"}
    if "torch_bf16" in samples and "onnxruntime_int8" in samples:
        ratios["onnxruntime_int8_speed_vs_torch_bf16"] = paired_ratio(
            samples["torch_bf16"]["total"], samples["onnxruntime_int8"]["total"])
    return {
        "size": list(size), "encoder_input": list(enc), "encoder_gflop": gflop,
        "threads": torch.get_num_threads(), **info, "note": NOTE, "export": export,
        "matmul_shape": list(shape), "matmul_peak_gflops": peaks,
        "achieved_gflops": {n: gflop / float(np.median(samples[n]["clip_forward"]))
                            for n in names if "clip_forward" in samples[n]},
        "vs_torch_fp32": {n: _agreement(results[n], results["torch_fp32"])
                          for n in names if n != "torch_fp32"},
        "feature_cosine_vs_torch_fp32": _feature_cosines(variants, images),
        "stages": summarise(samples), "ratios": ratios,
        "auto": _auto_report(auto, samples), "shared_core": shared,
    }


def child(model: str, cache_dir: str) -> None:
    """Export and quantise in this fresh process; print times and the peak RSS (VmHWM)."""
    from ovseg_ros.core.backends.onnx_encoder import build_files
    from ovseg_ros.core.maskclip import DenseClipEncoder
    from ovseg_ros.core.weights import load_clip

    if model == TINY:
        register_tiny()
    encoder = DenseClipEncoder(load_clip(model, "random", None, 0).visual.eval())
    before = {"rss_before_export_mb": current_rss_mb(), "peak_rss_before_export_mb":
              high_water_mb()}
    t0 = time.perf_counter()
    report = build_files(encoder, model, Path(cache_dir) / "onnx", int8=True)
    print(json.dumps({**before, "peak_rss_mb": high_water_mb(), "wall_s": time.perf_counter() - t0,
                      "export_s": report.export_s, "quantise_s": report.quantise_s,
                      "weights_digest_s": report.digest_s,
                      "fp32_file_mb": report.fp32_path.stat().st_size / 2**20,
                      "int8_file_mb": report.path.stat().st_size / 2**20,
                      "int8_settings": asdict(report.int8) if report.int8 else None}),
          flush=True)


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])
