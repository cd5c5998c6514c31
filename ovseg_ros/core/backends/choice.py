"""Which backend runs the dense CLIP encoder, and with which int8 settings: the rules and their
errors. The measurements behind them are in the doc/performance.md (backends) and `--only backends`.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import torch

from ..config import BACKENDS, PRECISIONS
from ..device import DeviceError, cpu_has_native_bf16, cpu_has_vnni

log = logging.getLogger(__name__)

# The optional dependencies of the onnxruntime backend: the runtime, and what the export
# (torch.onnx's dynamo exporter) and the int8 quantiser need. setup.py's extra installs them.
ONNX_MODULES = ("onnxruntime", "onnx", "onnxscript")
INSTALL_HINT = ("pip install onnxruntime onnx onnxscript (in a clone of ovseg_ros: pip install "
                "'.[onnxruntime]')")


class BackendError(DeviceError):
    """The requested backend or precision cannot run the dense encoder on this machine."""


def missing_onnx_modules() -> list[str]:
    """The onnxruntime backend's modules that are not installed (empty when it can run)."""
    return [name for name in ONNX_MODULES if importlib.util.find_spec(name) is None]


def _require_onnx(what: str) -> None:
    missing = missing_onnx_modules()
    if missing:
        raise BackendError(f"{what} needs {', '.join(missing)}, which is not installed: "
                           f"{INSTALL_HINT}; or use backend torch with precision fp32/bf16")


def choose_backend(backend: str, device: torch.device, precision: str) -> tuple[str, str]:
    """(backend, precision) to run with, from the requested ones on a resolved device.

    - int8: CPU only, backend onnxruntime (auto picks it); the torch parts run fp32.
    - onnxruntime: CPU, fp32 or int8; precision auto means fp32 there.
    - auto: torch on CUDA and for bf16/fp16; onnxruntime for fp32 on the CPU when installed
      (faster than torch fp32 on every CPU measured: doc/performance.md), else torch.
    Raises BackendError (what to do) when the combination cannot run.
    """
    name = (backend or "auto").strip().lower()
    precision = (precision or "auto").strip().lower()
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "int8":
        if device.type != "cpu":
            raise BackendError("precision int8 runs on the CPU only (onnxruntime dynamic "
                               "quantisation); on CUDA use precision auto, fp16 or bf16")
        if name == "torch":
            raise BackendError("precision int8 needs backend onnxruntime (or auto); backend "
                               "torch runs fp32, bf16 or fp16")
        _require_onnx("precision int8")
        return "onnxruntime", "int8"
    if name == "onnxruntime":
        if device.type != "cpu":
            raise BackendError("backend onnxruntime runs on the CPU here; on CUDA use backend "
                               "torch or auto")
        if precision in ("bf16", "fp16"):
            raise BackendError(f"backend onnxruntime runs fp32 or int8, not {precision}: use "
                               "backend torch for bf16/fp16")
        _require_onnx("backend onnxruntime")
        return "onnxruntime", "fp32"
    if name == "torch" or device.type != "cpu":
        return "torch", precision
    fp32 = precision == "fp32" or (precision == "auto" and not cpu_has_native_bf16())
    if not fp32:
        return "torch", precision
    if missing_onnx_modules():
        log.info("backend auto: torch, since onnxruntime is not installed; for fp32 on this "
                 "CPU it measured faster: %s", INSTALL_HINT)
        return "torch", precision
    return "onnxruntime", "fp32"


@dataclass(frozen=True)
class Int8Settings:
    """ONNX Runtime dynamic quantisation of the encoder's MatMuls (weights int8, activations
    uint8 quantised per call).

    reduce_range: 7-bit weights, so AVX2's 16-bit intermediate sums (vpmaddubsw) cannot
    saturate. Needed without VNNI, where full range loses noticeably more accuracy; with VNNI
    it costs a little accuracy and no speed (doc/performance.md has the measurements).
    per_channel: one scale per output channel: as fast as per tensor, slightly closer to fp32,
    and the safer choice for trained weights, whose channels differ more in range than random
    ones.
    attention: also the attention's activation x activation MatMuls (Q K^T and A V, both
    inputs quantised per call). Left in fp32 they were a large share of the int8 frame; the
    label agreement with torch fp32 barely changes (doc/performance.md).
    """

    reduce_range: bool
    per_channel: bool = True
    attention: bool = True

    def describe(self) -> str:
        rng = "7-bit weights (reduce_range)" if self.reduce_range else "full-range weights"
        attn = ", attention matmuls int8" if self.attention else ""
        return f"{rng}, {'per-channel' if self.per_channel else 'per-tensor'} scales{attn}"


def int8_settings(vnni: bool | None = None) -> Int8Settings:
    """The quantisation rule for this CPU: reduce_range exactly when it lacks VNNI."""
    return Int8Settings(reduce_range=not (cpu_has_vnni() if vnni is None else vnni))
