"""The GPU check (`scripts/gpu_check.sh`, under 8 minutes on one GPU): what the CPU machines of
this project cannot measure. Seeded random ViT-B-16 weights: agreement figures are numerical
proxies, not accuracy.

1. fp16 and bf16 against fp32 on CUDA: label agreement and max patch-probability difference.
2. Frames/s (production frames, `profile` off) at 448x448 batch 1 and 4 and 640x480, per
   precision, with the per-stage split from a profiled run (CUDA events), and peak VRAM.
3. Synchronising calls per production frame: torch.cuda.synchronize (patched, expected 0) and
   the sync points CUDA's sync debug mode reports (expected: the one result download).
4. onnxruntime-gpu (CUDA, TensorRT providers) on the exported encoder vs torch, when installed.

`--device cpu --smoke` runs every step on the tiny model on the CPU (onnxruntime's CPU
provider stands in), to check that the script itself works without a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ovseg_ros.core import NumericalError, Segmenter, SegmenterConfig
from ovseg_ros.core.tiny import register_tiny

from .images import sample_images

PROMPTS = ["person", "chair", "table", "door", "window", "floor", "wall", "lamp", "car", "tree"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make(model: str, device: str, precision: str, input_size: int, **extra: Any) -> Segmenter:
    seg = Segmenter(SegmenterConfig(model=model, clip_weights="random", heads="random",
                                    device=device, precision=precision, backend="torch",
                                    input_size=input_size, **extra))
    seg.set_prompts(PROMPTS)
    return seg


def agreement(seg: Segmenter, ref: list, images: list[np.ndarray]) -> dict[str, Any]:
    try:
        got = [seg.segment(img) for img in images]
    except NumericalError as exc:
        return {"error": str(exc)}
    return {"pixel_agreement": float(np.mean([(a.labels == b.labels).mean()
                                              for a, b in zip(got, ref, strict=True)])),
            "patch_prob_maxdiff": float(max(np.abs(a.patch_probs - b.patch_probs).max()
                                            for a, b in zip(got, ref, strict=True)))}


def throughput(seg: Segmenter, size: tuple[int, int], batch: int, reps: int) -> dict[str, Any]:
    """Production frames/s (no profiling) and, from extra profiled frames, the stage split."""
    dev = seg.runtime.device
    images = sample_images(size, batch)
    seg.segment_batch(images)  # warm-up (kernels, caches, the pinned buffer)
    sync(dev)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        seg.segment_batch(images)
        sync(dev)
        times.append(time.perf_counter() - t0)
    seg.reconfigure(profile=True)
    try:
        stages = [seg.segment_batch(images)[0].timings for _ in range(max(2, reps // 4))]
    finally:
        seg.reconfigure(profile=False)
    median = float(np.median(times))
    return {"frames_per_s": batch / median, "median_ms": 1e3 * median,
            "p90_ms": 1e3 * float(np.percentile(times, 90)),
            "stages_ms": {k: 1e3 * float(np.median([s[k] for s in stages])) for k in stages[0]}}


def sync_counts(seg: Segmenter, size: tuple[int, int]) -> dict[str, Any]:
    """Calls to torch.cuda.synchronize during one production frame, and (CUDA) the number of
    synchronising operations CUDA's sync debug mode warns about."""
    rgb = sample_images(size, 1)[0]
    calls = []
    real = torch.cuda.synchronize
    torch.cuda.synchronize = lambda *a, **k: calls.append(1)
    try:
        seg.segment(rgb)
    finally:
        torch.cuda.synchronize = real
    out: dict[str, Any] = {"torch_cuda_synchronize_calls": len(calls)}
    if seg.runtime.device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                seg.segment(rgb)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        out["sync_debug_warnings"] = [str(w.message).splitlines()[0][:160] for w in caught]
    return out


def onnxruntime_gpu(seg: Segmenter, size: tuple[int, int], reps: int, smoke: bool
                    ) -> dict[str, Any]:
    """The exported encoder on each available onnxruntime GPU provider vs torch's fp32 encoder
    on the same device, with IO binding on device memory (no host round trip)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install onnxruntime-gpu onnx "
                           "onnxscript; onnxruntime-gpu replaces the CPU package)"}
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    providers = [p for p in wanted if p in ort.get_available_providers()]
    if smoke and not providers:
        providers = ["CPUExecutionProvider"]  # exercises this code on a machine without GPU
    if not providers:
        return {"skipped": f"no GPU provider in onnxruntime ({ort.get_available_providers()})"}
    from ovseg_ros.core.backends.onnx_encoder import build_files
    from ovseg_ros.core.maskclip import DenseClipEncoder, normalise_pixels
    from ovseg_ros.core.weights import load_clip

    cpu_encoder = DenseClipEncoder(load_clip(seg.config.model, "random", None, 0).visual.eval())
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ovseg-gpu-check-") as tmp:
        t0 = time.perf_counter()
        path = build_files(cpu_encoder, seg.config.model, Path(tmp), int8=False).path
        out["export_s"] = time.perf_counter() - t0
        dev = seg.runtime.device
        p = seg.encoder.patch
        h, w = (-(-v // p) * p for v in seg.processing_size(size))
        rgb = torch.from_numpy(sample_images((h, w), 1)[0]).permute(2, 0, 1)[None] / 255.0
        pixels = normalise_pixels(rgb.float()).to(dev).contiguous()
        table = seg.encoder.pos(h // p, w // p).float().to(dev).contiguous()
        with torch.inference_mode():
            want = seg.encoder(pixels)
        for provider in providers:
            out[provider] = _ort_provider(ort, path, provider, pixels, table, want, reps)
    return out


def _ort_provider(ort, path: Path, provider: str, pixels: torch.Tensor, table: torch.Tensor,
                  want: tuple[torch.Tensor, torch.Tensor], reps: int) -> dict[str, Any]:
    try:
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(path), providers=[provider])
        start_s = time.perf_counter() - t0
        kind = "cuda" if pixels.device.type == "cuda" else "cpu"
        index = pixels.device.index or 0
        outs = [torch.empty(t.shape, dtype=torch.float32, device=t.device) for t in want]
        binding = session.io_binding()
        for name, t in (("pixels", pixels), ("table", table)):
            binding.bind_input(name, kind, index, np.float32, list(t.shape), t.data_ptr())
        for name, t in zip(("dense", "g"), outs, strict=True):
            binding.bind_output(name, kind, index, np.float32, list(t.shape), t.data_ptr())
        session.run_with_iobinding(binding)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            session.run_with_iobinding(binding)
            times.append(time.perf_counter() - t0)
        diff = max(float((a - b.float()).abs().max()) for a, b in zip(outs, want, strict=True))
        return {"session_start_s": start_s, "dense_forward_ms": 1e3 * float(np.median(times)),
                "max_abs_diff_vs_torch_fp32": diff}
    except Exception as exc:  # a provider that loads but cannot run this graph
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    model = register_tiny() if args.smoke else args.model
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available here; use --device cpu --smoke")
    reps = 2 if args.smoke else args.reps
    sizes = [(48, 64), (48, 64)] if args.smoke else [(448, 448), (480, 640)]
    input_size = 0 if args.smoke else 448
    header: dict[str, Any] = {"device": str(dev), "torch": torch.__version__,
                              "cuda": torch.version.cuda, "model": model, "smoke": args.smoke,
                              "weights": "seeded random (agreement is a numerical proxy)"}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        header.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                      vram_gb=props.total_memory / 2**30)
    out: dict[str, Any] = {"header": header, "precisions": {}}
    print(json.dumps(header), flush=True)
    images = sample_images(sizes[0], 3)
    ref = None
    for precision in ("fp32", "fp16", "bf16"):
        t0 = time.perf_counter()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        seg = make(model, args.device, precision, input_size)
        entry: dict[str, Any] = {}
        if ref is None:
            ref = [seg.segment(img) for img in images]
        else:
            entry["vs_fp32"] = agreement(seg, ref, images)
        for key, size, batch in (("448x448_b1", sizes[0], 1), ("448x448_b4", sizes[0], 4),
                                 ("640x480_b1", sizes[1], 1)):
            entry[key] = throughput(seg, size, batch, reps)
        entry["sync"] = sync_counts(seg, sizes[0])
        if dev.type == "cuda":
            entry["peak_vram_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        if precision == "fp32":
            out["onnxruntime"] = onnxruntime_gpu(seg, sizes[0], reps, args.smoke)
        entry["seconds"] = time.perf_counter() - t0
        out["precisions"][precision] = entry
        print(json.dumps({precision: entry}), flush=True)
        del seg
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ovseg_ros.bench.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="ViT-B-16")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--smoke", action="store_true", help="tiny model, 2 repetitions")
    p.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    results = run(args)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
