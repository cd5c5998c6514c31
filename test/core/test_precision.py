"""Precision modes: resolution rules and the effect of bf16 on the output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import DeviceError
from ovseg_ros.core import device as device_module
from ovseg_ros.core.device import Runtime, cpu_has_native_bf16, resolve_device, resolve_dtype


def test_explicit_precisions():
    cpu = torch.device("cpu")
    assert resolve_dtype("fp32", cpu) == torch.float32
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("fp16", cpu) == torch.float16
    # int8 quantises the dense encoder (onnxruntime); the torch parts around it run fp32
    assert resolve_dtype("int8", cpu) == torch.float32
    with pytest.raises(DeviceError, match="unknown precision"):
        resolve_dtype("int4", cpu)


def test_auto_on_cpu_follows_native_bf16():
    want = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert resolve_dtype("auto", torch.device("cpu")) == want


def test_cuda_requested_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
    with pytest.raises(DeviceError):
        resolve_device("tpu")


def test_runtime_describe():
    rt = Runtime.create("cpu", "bf16")
    assert rt.precision == "bf16" and "cpu" in rt.describe()


@pytest.mark.parametrize("native", [True, False])
def test_emulated_reduced_precision_is_warned_once_at_creation(monkeypatch, caplog, native):
    """bf16 without native instructions ran 16x slower than fp32 on an AVX2 CPU: say so."""
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger=device_module.__name__):
        rt = Runtime.create("cpu", "bf16")
        auto = Runtime.create("cpu", "auto")
        Runtime.create("cpu", "fp32")
    warned = [r.getMessage() for r in caplog.records]
    assert auto.dtype == (torch.bfloat16 if native else torch.float32)
    if native:
        assert warned == [] and "emulated" not in rt.describe()
    else:
        assert len(warned) == 1 and "bf16" in warned[0] and "emulated" in warned[0]
        assert "emulated" in rt.describe() and "emulated" not in auto.describe()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_close_to_fp32(tmp_path, precision):
    fp32 = tiny_segmenter(tmp_path, background=False)
    low = tiny_segmenter(tmp_path, background=False, precision=precision)
    assert low.runtime.dtype != torch.float32
    prompts = ["chair", "person", "table", "lamp"]
    fp32.set_prompts(prompts)
    low.set_prompts(prompts)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    a, b = fp32.segment(img), low.segment(img)
    assert b.patch_probs.dtype == np.float32
    assert np.abs(a.patch_probs - b.patch_probs).max() < 0.25
    agreement = (a.labels == b.labels).mean()
    assert agreement > 0.8, agreement


def test_nan_from_the_model_refuses_the_frame_and_the_next_good_frame_works(tmp_path):
    from ovseg_ros.core import NumericalError

    seg = tiny_segmenter(tmp_path, precision="fp32")
    seg.set_prompts(["cat", "dog"])
    rgb = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    good = seg.segment(rgb)
    proj = seg.clip.visual.proj
    saved = proj.detach().clone()
    with torch.no_grad():
        proj[0, 0] = float("nan")  # a corrupt weight, as an fp16 overflow would leave it
    with pytest.raises(NumericalError, match="NaN/Inf at fp32"):
        seg.segment(rgb)
    with torch.no_grad():
        proj.copy_(saved)
    again = seg.segment(rgb)
    assert np.array_equal(again.labels, good.labels)
