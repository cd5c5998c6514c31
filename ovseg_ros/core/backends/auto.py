"""The one factory that decides how the dense encoder runs: the Runtime of a Segmenter.

Explicit settings follow `choose_backend`'s rules. On the CPU, when `backend` or `precision` is
auto and more than one candidate is allowed, the candidates are timed on the loaded encoder
(`probe.decide`: cached per machine, threads, versions, model and input size).

It sits above core/device.py (which knows nothing of backends), so the import graph has no
circle: device <- backends.choice <- backends.auto <- segmenter.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..config import SegmenterConfig
from ..device import Runtime, cpu_has_native_bf16, cpu_has_native_fp16, release_memory
from ..maskclip import DenseClipEncoder, normalise_pixels
from ..tiling import short_side_size
from ..weights import default_cache_dir
from . import probe
from .choice import choose_backend, missing_onnx_modules
from .onnx_cache import library_versions

log = logging.getLogger(__name__)
# The probe's square input when input_size is 0 (the frame's own size is unknown at start-up).
PROBE_SIDE_WHEN_UNSCALED = 448
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def probe_input_hw(input_size: int, patch: int) -> tuple[int, int]:
    """(H, W) the probe times: a square frame at `input_size`, padded to the patch."""
    side = input_size or PROBE_SIDE_WHEN_UNSCALED
    h, w = short_side_size(side, side, side)
    return -(-h // patch) * patch, -(-w // patch) * patch


class EncoderForwards:
    """`prepare(candidate)` for the probe: a forward of the real dense encoder on one frame.

    torch fp32 runs the loaded fp32 encoder; bf16/fp16 a converted copy of the visual tower
    (dropped after the probe); onnxruntime the cached export (exported now when missing: a
    one-time cost announced by a warning and kept out of the probe's budget).
    """

    def __init__(self, visual: nn.Module, model: str, cache_dir: Path | None,
                 hw: tuple[int, int], spin: bool = False):
        self.encoder = DenseClipEncoder(visual)
        self.model, self.cache_dir, self.spin = model, cache_dir, spin
        torch.manual_seed(0)
        self.pixels = normalise_pixels(torch.rand(1, 3, *hw))

    def __call__(self, c: probe.Candidate) -> Callable[[], object]:
        if c.backend == "onnxruntime":
            from .onnx_encoder import OnnxDenseEncoder

            dense, _ = OnnxDenseEncoder.build(self.encoder, self.model, self.cache_dir,
                                              c.precision == "int8", self.spin)
            return lambda: dense(self.pixels)
        dtype = _DTYPES[c.precision]
        encoder = (self.encoder if dtype == torch.float32
                   else DenseClipEncoder(copy.deepcopy(self.encoder.visual).to(dtype)))
        pixels = self.pixels.to(dtype)

        def forward() -> object:
            with torch.inference_mode():
                return encoder(pixels)
        return forward


def choose_runtime(config: SegmenterConfig, device: torch.device, visual: nn.Module,
                   cache_dir: Path | None = None, prepare: probe.Prepare | None = None
                   ) -> tuple[Runtime, probe.ProbeResult | None]:
    """(Runtime, the probe's result or None) for `config` on a resolved `device`.

    visual: the loaded fp32 CPU visual tower (what the probe times; not modified).
    prepare: the candidates' forwards (default `EncoderForwards`; a seam for tests).
    Raises BackendError/DeviceError for combinations that cannot run (`choose_backend`).
    """
    backend, precision = choose_backend(config.backend, device, config.precision)
    wants_auto = "auto" in (config.backend.strip().lower(), config.precision.strip().lower())
    options = probe.candidates(config.backend.strip().lower(), config.precision.strip().lower(),
                               onnx=not missing_onnx_modules(), native_bf16=cpu_has_native_bf16(),
                               native_fp16=cpu_has_native_fp16(), int8=config.auto_int8)
    why = ("the backend and precision settings" if not wants_auto
           else "rule: CUDA runs torch" if device.type != "cpu"
           else "rule (auto_probe off): native bf16 flag, else onnxruntime fp32 if installed"
           if config.auto_probe == "off"
           else "the only candidate allowed here" if len(options) < 2 else "")
    rule = Runtime.create(device, precision, backend, reason=why or "rule (no candidate ran)")
    if why:
        return rule, None
    threads = config.threads or torch.get_num_threads()
    hw = probe_input_hw(config.input_size, visual.conv1.kernel_size[0])
    key = probe.probe_key(config.model, hw, threads, options, library_versions(),
                          onnx_spinning=config.onnx_spinning)
    folder = Path(cache_dir or default_cache_dir()) / "probe"
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        prepare = prepare or EncoderForwards(visual, config.model, cache_dir, hw,
                                             config.onnx_spinning)
        result = probe.decide(options, prepare, key, folder, config.auto_probe,
                              config.auto_probe_budget_s)
    finally:
        torch.set_num_threads(before)
        prepare = None  # the probe's encoders, copies and sessions go now
        release_memory()
    if result is None:
        log.warning("backend auto: no candidate ran in the probe; using the rule: %s %s",
                    rule.backend, rule.precision)
        return rule, None
    c = result.choice
    return Runtime.create(device, c.precision, c.backend, reason=result.reason), result
