"""The dense CLIP encoder through ONNX Runtime on the CPU (fp32 or dynamic int8).

`OnnxDenseEncoder(pixels)` has `DenseClipEncoder`'s contract: normalised pixels (B, 3, H, W),
H and W multiples of the patch -> dense F (B, D, h, w), G (B, W, h, w), fp32 CPU tensors.
The positional table comes from the torch encoder's per-grid cache, so every size runs on the
one exported file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..maskclip import DenseClipEncoder, patch_grid
from ..weights import default_cache_dir
from .choice import Int8Settings, int8_settings
from .onnx_cache import cached_file, library_versions, weights_digest
from .onnx_export import INPUTS, OUTPUTS, export_dense, quantise_int8

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What making the session took: which files, and whether they were built now."""

    fp32_path: Path
    path: Path
    export_s: float = 0.0  # 0 when the fp32 file came from the cache
    quantise_s: float = 0.0  # 0 when fp32, or the int8 file came from the cache
    digest_s: float = 0.0
    session_s: float = 0.0
    int8: Int8Settings | None = None
    built: list[str] = field(default_factory=list)


def ort_session(path: Path, threads: int, spin: bool = False):
    """An onnxruntime CPU session on `path`: all graph optimisations, `threads` intra-op
    threads, idle workers spinning only when `spin` (and OMP_WAIT_POLICY is not PASSIVE)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about unused initializers
    # Idle workers busy-wait for the next op unless told not to: that takes CPU from the other
    # processes of a shared machine (and from our own other threads). Off unless the setting
    # onnx_spinning asks for it; OMP_WAIT_POLICY=PASSIVE (torch's request) always turns it off.
    spin = spin and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _timed(what: str, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    log.info("%s took %.1f s", what, seconds)
    return out, seconds


def build_files(encoder: DenseClipEncoder, model: str, folder: Path, int8: bool,
                settings: Int8Settings | None = None) -> BuildReport:
    """Export (and quantise) `encoder` into `folder` unless valid cached files exist.

    settings: int8 quantisation settings; default this CPU's rule (`int8_settings`)."""
    t0 = time.perf_counter()
    fields = {"model": model, "weights_sha256": weights_digest(encoder.visual),
              "feature_block": encoder.feature_index, "versions": library_versions()}
    digest_s = time.perf_counter() - t0
    times = {"export": 0.0, "quantise": 0.0}

    def export(target: Path) -> list[Path]:
        log.warning("exporting the dense CLIP encoder (%s) to ONNX, once for these weights and "
                    "library versions (ViT-B-16: 20-50 s and about 2.5 GB of memory); cache: %s",
                    model, folder)
        files, times["export"] = _timed("ONNX export", export_dense, encoder, target)
        return files

    fp32, built = cached_file(folder, f"{model}-fp32", {**fields, "precision": "fp32"}, export)
    report = BuildReport(fp32_path=fp32, path=fp32, digest_s=digest_s,
                         built=["fp32"] if built else [])
    if int8:
        settings = settings or int8_settings()

        def quantise(target: Path) -> list[Path]:
            log.warning("quantising the ONNX encoder to int8 (%s), once", settings.describe())
            files, times["quantise"] = _timed("int8 quantisation", quantise_int8, fp32, target,
                                              settings)
            return files

        key = {**fields, "precision": "int8", "int8": asdict(settings)}
        report.path, built = cached_file(folder, f"{model}-int8", key, quantise)
        report.int8 = settings
        report.built += ["int8"] if built else []
    report.export_s, report.quantise_s = times["export"], times["quantise"]
    return report


class OnnxDenseEncoder:
    """An ONNX Runtime session with the dense encoder's contract (see the module docstring).

    Thread-safe: ORT sessions may run concurrently; the table cache only ever gains entries.
    A call runs with the calling thread's torch thread count as onnxruntime's intra-op
    threads, so the Segmenter's `threads` setting (applied before every frame) holds for this
    backend too. onnxruntime fixes the count when a session opens: a new count opens a session
    once (about the time of a start's session load), and the KEPT_SESSIONS most recently used
    stay open (each holds its own copy of the weights: 84 MB int8, 324 MB fp32 for ViT-B-16).
    """

    KEPT_SESSIONS = 2  # the setting's old and new value: switching back costs nothing

    def __init__(self, encoder: DenseClipEncoder, path: Path, threads: int | None = None,
                 spin: bool = False):
        self.pos = encoder.pos
        self.patch = encoder.patch
        self.path = path
        self.spin = spin
        self._sessions: dict[int, object] = {}  # threads -> session, least recently used first
        self._lock = threading.Lock()
        self._tables: dict[tuple[int, int], np.ndarray] = {}
        self.session_for(threads or torch.get_num_threads())

    def session_for(self, threads: int):
        """The session with `threads` intra-op threads, opened now if none is kept."""
        with self._lock:
            session = self._sessions.pop(threads, None)
            if session is None:
                t0 = time.perf_counter()
                session = ort_session(self.path, threads, self.spin)
                if self._sessions:
                    log.info("onnxruntime: opened a session with %d threads for the threads "
                             "setting in %.2f s", threads, time.perf_counter() - t0)
            self._sessions[threads] = session
            while len(self._sessions) > self.KEPT_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
            return session

    @property
    def threads(self) -> int:
        """The intra-op thread count of the most recently used session."""
        return next(reversed(self._sessions))

    @classmethod
    def build(cls, encoder: DenseClipEncoder, model: str, cache_dir: Path | None = None,
              int8: bool = False, spin: bool = False, threads: int | None = None
              ) -> tuple[OnnxDenseEncoder, BuildReport]:
        """Export/quantise once into `<cache>/onnx`, verify, and open a session with `threads`
        intra-op threads (default: torch's count now)."""
        folder = Path(cache_dir or default_cache_dir()) / "onnx"
        report = build_files(encoder, model, folder, int8)
        t0 = time.perf_counter()
        out = cls(encoder, report.path, threads, spin)
        report.session_s = time.perf_counter() - t0
        return out, report

    def table(self, h: int, w: int) -> np.ndarray:
        """(1 + h * w, W) float32 positional table for an h x w grid, cached."""
        cached = self._tables.get((h, w))
        if cached is None:
            with torch.inference_mode():
                cached = np.ascontiguousarray(self.pos(h, w).float().cpu().numpy())
            self._tables[(h, w)] = cached
        return cached

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.ascontiguousarray(pixels.detach().to("cpu", torch.float32).numpy())
        table = self.table(*patch_grid(pixels, self.patch))
        session = self.session_for(torch.get_num_threads())
        dense, g = session.run(list(OUTPUTS), {INPUTS[0]: x, INPUTS[1]: table})
        return torch.from_numpy(dense), torch.from_numpy(g)
