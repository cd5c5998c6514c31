"""Backends of the dense CLIP encoder (the forward that is ~95% of a frame): torch, or ONNX
Runtime on the CPU in fp32 or dynamic int8. The heads, pooling, text and CLIP-DIY stay torch.

`make_dense_encoder` returns a callable with `DenseClipEncoder`'s contract: normalised pixels
(B, 3, H, W) -> dense F (B, D, h, w), G (B, W, h, w).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from ..device import Runtime
from ..maskclip import DenseClipEncoder
from .auto import choose_runtime
from .choice import (
    BACKENDS,
    INSTALL_HINT,
    BackendError,
    Int8Settings,
    choose_backend,
    int8_settings,
    missing_onnx_modules,
)

log = logging.getLogger(__name__)
DenseForward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
INT8_NOTE = ("precision int8 is an approximation: with seeded random ViT-B-16 weights its "
             "labels agreed with fp32 on 99.1% of the benchmark images' pixels "
             "(doc/performance.md), but its effect on the accuracy of the real weights has not "
             "been measured; compare it with fp32 on your own images before relying on it")

__all__ = ["BACKENDS", "INSTALL_HINT", "INT8_NOTE", "BackendError", "DenseForward",
           "Int8Settings", "choose_backend", "choose_runtime", "int8_settings",
           "make_dense_encoder", "missing_onnx_modules"]


def make_dense_encoder(encoder: DenseClipEncoder, runtime: Runtime, model: str,
                       cache_dir: Path | None = None, spin: bool = False,
                       threads: int = 0) -> DenseForward:
    """The dense forward for `runtime.backend`: `encoder` itself for torch; for onnxruntime an
    `OnnxDenseEncoder` on the cached export (built now when missing or invalid; `encoder`
    must then be fp32 on the CPU), its first session opened with `threads` (0: torch's count)."""
    if runtime.backend == "torch":
        return encoder
    from .onnx_encoder import OnnxDenseEncoder

    if runtime.int8:
        log.warning(INT8_NOTE)
    dense, report = OnnxDenseEncoder.build(encoder, model, cache_dir, runtime.int8, spin,
                                           threads or None)
    what = f"int8, {report.int8.describe()}" if report.int8 else "fp32"
    log.info("dense encoder: onnxruntime %s from %s%s", what, report.path,
             f" (built now: {', '.join(report.built)})" if report.built else "")
    return dense
