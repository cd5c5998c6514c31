"""Device and precision resolution: the one place that decides where and in what dtype we run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import PRECISIONS
from .errors import DeviceError

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _torch_cpu_reports_any(*checks: str) -> bool:
    """True when any of torch.cpu's private feature probes says yes (missing ones say no)."""
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 matmuls natively (AVX512-BF16 or AMX).

    Without it, bf16 on CPU is emulated and slower than fp32, so `auto` must not pick it.
    """
    return _torch_cpu_reports_any("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_has_native_fp16() -> bool:
    """True when the CPU executes fp16 matmuls natively (AVX512-FP16 or AMX-FP16)."""
    return _torch_cpu_reports_any("_is_avx512_fp16_supported", "_is_amx_fp16_supported")


def cpu_has_vnni() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8).

    Without them, int8 matmuls go through 16-bit intermediate sums that saturate (AVX2's
    vpmaddubsw), which decides ONNX Runtime's quantisation range (core/backends/choice.py).
    """
    if _torch_cpu_reports_any("_is_vnni_supported", "_is_amx_tile_supported"):
        return True
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def emulation_warning(device: torch.device, dtype: torch.dtype) -> str | None:
    """Why `dtype` on `device` will be slow, or None when it runs natively.

    A reduced precision the CPU lacks is emulated through fp32 conversions: on a 2-core AVX2
    Zen 3 a 448x448 bf16 frame took 20.6 s against 1.3 to 1.5 s in fp32 (doc/performance.md).
    """
    if device.type != "cpu" or dtype == torch.float32:
        return None
    native = cpu_has_native_bf16() if dtype == torch.bfloat16 else cpu_has_native_fp16()
    if native:
        return None
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    return (f"precision {name} on a CPU without native {name} instructions is emulated and "
            "many times slower than fp32; use precision auto or fp32")


def resolve_device(name: str) -> torch.device:
    """Map "auto" | "cpu" | "cuda" | "cuda:N" to a usable torch.device or raise DeviceError."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} requested but CUDA is not available on this machine; "
                "use device=auto to fall back to the CPU"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: only {torch.cuda.device_count()} CUDA devices")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device type {device.type!r}: use auto, cpu or cuda[:N]")
    return device


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Pick the compute dtype for `precision` on `device`.

    auto: bf16 on a CPU with native bf16, bf16 on CUDA cards that support it (else fp16),
    fp32 everywhere else. int8: fp32, the dtype of everything but the quantised encoder.
    """
    precision = (precision or "auto").strip().lower()
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "int8":
        return torch.float32
    if precision != "auto":
        return _DTYPES[precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


@dataclass(frozen=True)
class Runtime:
    """Where the model runs and in which dtype; passed to every module that allocates tensors.

    backend: what runs the dense CLIP encoder ("torch" or "onnxruntime"); int8: that encoder
    is dynamically quantised (onnxruntime only; `dtype` is then the torch parts' fp32).
    """

    device: torch.device
    dtype: torch.dtype
    backend: str = "torch"
    int8: bool = False
    reason: str = ""  # why this backend and precision: a rule, or the probe's measurement

    @classmethod
    def create(cls, device: str | torch.device = "auto", precision: str = "auto",
               backend: str = "torch", reason: str = "") -> Runtime:
        """Resolve the device and the dtype of `precision` for an already chosen backend
        ("torch" or "onnxruntime": `backends.choose_runtime` chooses and validates it).
        Warns when the dtype is emulated on this CPU; DeviceError when it cannot run here."""
        dev = resolve_device(str(device))
        precision = (precision or "auto").strip().lower()
        runtime = cls(dev, resolve_dtype(precision, dev), backend, precision == "int8", reason)
        if (why := emulation_warning(runtime.device, runtime.dtype)) is not None:
            log.warning(why)
        return runtime

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else {v: k for k, v in _DTYPES.items()}[self.dtype]

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        emulated = " (emulated: slow)" if emulation_warning(self.device, self.dtype) else ""
        backend = "" if self.backend == "torch" else f" via {self.backend}"
        approx = " (approximate)" if self.int8 else ""
        return (f"{name}, {self.precision}{emulated}{backend}{approx}, "
                f"{torch.get_num_threads()} threads")


def release_memory(device: torch.device | None = None) -> None:
    """Return freed memory to the system after a model was dropped: collect cycles, empty the
    CUDA cache, and ask glibc to give free heap pages back (else RSS stays at its peak)."""
    import ctypes
    import gc

    gc.collect()
    if device is not None and device.type == "cuda":
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def free_device_memory(device: torch.device) -> bool:
    """Return cached blocks to the device after an out-of-memory error (CUDA only)."""
    if device.type != "cuda":
        return False
    torch.cuda.empty_cache()
    return True


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM, or the CPU allocator failing (a RuntimeError from c10), or MemoryError."""
    return (isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError))
            or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)))
