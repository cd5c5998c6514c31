"""Dense-encoder backends: the choice rules and their errors, the ONNX export's cache (reuse,
corruption, staleness, side files), int8, and FramePipeline end to end on onnxruntime int8.

onnxruntime is an optional dependency that CI installs: these tests fail without it."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.core import FramePipeline, KeyframeConfig
from ovseg_ros.core import backends as B
from ovseg_ros.core.backends import choice, onnx_cache, onnx_export
from ovseg_ros.core.backends.onnx_encoder import OnnxDenseEncoder, build_files

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # choose_backend never touches CUDA
PROMPTS = ["chair", "person", "table"]


def _image(seed: int, h: int = 64, w: int = 96) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def no_onnx(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in choice.ONNX_MODULES else real(name, *a))


def test_rules_for_each_device_and_precision(monkeypatch):
    monkeypatch.setattr(choice, "cpu_has_native_bf16", lambda: False)
    assert choice.choose_backend("auto", CPU, "fp32") == ("onnxruntime", "fp32")
    assert choice.choose_backend("auto", CPU, "auto") == ("onnxruntime", "fp32")  # fp32 here
    assert choice.choose_backend("auto", CPU, "int8") == ("onnxruntime", "int8")
    assert choice.choose_backend("onnxruntime", CPU, "auto") == ("onnxruntime", "fp32")
    assert choice.choose_backend("torch", CPU, "fp32") == ("torch", "fp32")
    assert choice.choose_backend("auto", CPU, "bf16") == ("torch", "bf16")
    assert choice.choose_backend("auto", CUDA, "fp32") == ("torch", "fp32")
    assert choice.choose_backend("auto", CUDA, "auto") == ("torch", "auto")
    monkeypatch.setattr(choice, "cpu_has_native_bf16", lambda: True)
    assert choice.choose_backend("auto", CPU, "auto") == ("torch", "auto")  # bf16 here


@pytest.mark.parametrize("backend, device, precision, message", [
    ("auto", CUDA, "int8", "CPU only"),
    ("torch", CPU, "int8", "needs backend onnxruntime"),
    ("onnxruntime", CUDA, "fp32", "on CUDA use backend torch"),
    ("onnxruntime", CPU, "bf16", "runs fp32 or int8"),
    ("tensorrt", CPU, "fp32", "unknown backend"),
])
def test_impossible_combinations_are_typed_errors(backend, device, precision, message):
    with pytest.raises(B.BackendError, match=message):
        choice.choose_backend(backend, device, precision)


def test_missing_onnxruntime_is_one_clear_error(no_onnx, tmp_path):
    assert choice.missing_onnx_modules() == list(choice.ONNX_MODULES)
    for backend, precision in (("onnxruntime", "fp32"), ("auto", "int8")):
        with pytest.raises(B.BackendError, match=r"pip install '\.\[onnxruntime\]'"):
            tiny_segmenter(tmp_path, backend=backend, precision=precision)
    assert tiny_segmenter(tmp_path, backend="auto").runtime.backend == "torch"  # falls back


def test_int8_rule_follows_vnni():
    assert choice.int8_settings(vnni=False).reduce_range
    assert not choice.int8_settings(vnni=True).reduce_range
    assert choice.int8_settings(vnni=True).per_channel


def _entries(folder):
    return sorted(p.name for p in folder.glob("*.onnx*"))


@pytest.mark.slow
def test_export_is_cached_one_file_serves_every_size(tmp_path):
    seg = tiny_segmenter(tmp_path, backend="onnxruntime")
    ref = tiny_segmenter(tmp_path, backend="torch")
    folder = tmp_path / "cache" / "onnx"
    files = _entries(folder)
    assert len(files) == 1 and files[0].endswith(".onnx")  # written at construction
    for s in (seg, ref):
        s.set_prompts(PROMPTS)
    for size in ((64, 96), (48, 48), (33, 17), (16, 160)):
        a, b = seg.segment(_image(1, *size)), ref.segment(_image(1, *size))
        assert np.abs(a.patch_probs - b.patch_probs).max() < 1e-4, size
    with torch.inference_mode():  # a batch of 3 through the same file
        x = torch.rand(3, 3, 32, 48)
        dense, g = seg.features(x)
        want = ref.features(x)
    assert torch.allclose(dense, want[0], atol=1e-4) and torch.allclose(g, want[1], atol=1e-4)
    assert _entries(folder) == files  # no re-export for other sizes
    again = build_files(seg.encoder, seg.config.model, folder, int8=False)
    assert again.built == [] and again.export_s == 0.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny Segmenter on onnxruntime (its export in cache/onnx) and one on torch."""
    directory = tmp_path_factory.mktemp("exported")
    seg = tiny_segmenter(directory, backend="onnxruntime")
    return seg, tiny_segmenter(directory), directory / "cache" / "onnx"


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["flip", "truncate", "no_manifest", "bad_json", "stale"])
def test_damaged_cache_is_rebuilt_not_loaded(exported, tmp_path, caplog, damage):
    seg, ref, pristine = exported
    folder = tmp_path / "onnx"
    shutil.copytree(pristine, folder)
    path = next(folder.glob("*.onnx"))
    manifest = path.with_suffix(".json")
    good = path.read_bytes()
    if damage == "flip":
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(good[: len(good) // 3])
    elif damage == "no_manifest":
        manifest.unlink()
    elif damage == "bad_json":
        manifest.write_text("{not json")
    else:
        data = json.loads(manifest.read_text())
        data["key"]["weights_sha256"] = "0" * 64
        manifest.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        report = build_files(seg.encoder, seg.config.model, folder, int8=False)
    assert report.built == ["fp32"] and report.path == path
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert json.loads(manifest.read_text())["files"][path.name]["sha256"] == \
        onnx_cache.file_sha256(path)
    x = torch.rand(1, 3, 48, 64)
    with torch.inference_mode():
        got, want = OnnxDenseEncoder(seg.encoder, path)(x), ref.encoder(x)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(got, want, strict=True))


@pytest.mark.slow
def test_other_weights_get_their_own_entry_and_old_versions_are_pruned(tmp_path):
    seg = tiny_segmenter(tmp_path, backend="onnxruntime")
    folder = tmp_path / "cache" / "onnx"
    first = next(folder.glob("*.json"))
    with torch.no_grad():
        seg.encoder.visual.proj.mul_(2.0)  # other weights: another key, a new export
    second = build_files(seg.encoder, seg.config.model, folder, int8=False)
    assert second.built == ["fp32"] and len(list(folder.glob("*.json"))) == 2
    data = json.loads(first.read_text())
    data["key"]["versions"]["torch"] = "0.0.1"  # as if written by an install that is gone
    first.write_text(json.dumps(data))
    with torch.no_grad():
        seg.encoder.visual.proj.mul_(1.5)
    third = build_files(seg.encoder, seg.config.model, folder, int8=False)
    assert third.built == ["fp32"]
    kept = sorted(p.name for p in folder.glob("*.json"))
    assert kept == sorted(p.path.with_suffix(".json").name for p in (second, third))
    assert not first.with_suffix(".onnx").exists()  # its model file went with it


@pytest.mark.slow
def test_large_models_write_a_side_file(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    seg = tiny_segmenter(tmp_path, backend="onnxruntime", precision="int8")
    folder = tmp_path / "cache" / "onnx"
    names = _entries(folder)
    assert sum(n.endswith(".onnx.data") for n in names) == 2, names
    for manifest in folder.glob("*.json"):
        assert len(json.loads(manifest.read_text())["files"]) == 2
    seg.set_prompts(PROMPTS)
    assert seg.segment(_image(3)).labels.shape == (64, 96)


@pytest.mark.slow
def test_int8_runs_with_a_startup_note_and_stays_close_to_fp32(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        q = tiny_segmenter(tmp_path, backend="auto", precision="int8")
    assert q.runtime.int8 and q.runtime.backend == "onnxruntime"
    assert q.runtime.dtype == torch.float32  # the torch parts
    assert q.runtime.precision == "int8" and "approximate" in q.runtime.describe()
    assert any("approximation" in r.getMessage() and "not been measured" in r.getMessage()
               for r in caplog.records)
    assert len(list((tmp_path / "cache" / "onnx").glob("*.json"))) == 2  # fp32 and int8
    ref = tiny_segmenter(tmp_path)
    for s in (q, ref):
        s.set_prompts(PROMPTS)
    agree, diff = [], []
    for seed in range(3):
        a, b = q.segment(_image(seed)), ref.segment(_image(seed))
        agree.append((a.labels == b.labels).mean())
        diff.append(np.abs(a.patch_probs - b.patch_probs).max())
    assert 0 < max(diff) < 0.2, diff  # quantised: different, but close
    assert np.mean(agree) > 0.8, agree


@pytest.mark.slow
def test_frame_pipeline_end_to_end_on_onnxruntime_int8(tmp_path):
    """What `ovseg segment --backend onnxruntime --precision int8` runs, with keyframes (CLIP-DIY
    and the heads stay in torch)."""
    seg = tiny_segmenter(tmp_path, backend="onnxruntime", precision="int8", input_size=48)
    pipe = FramePipeline(seg, KeyframeConfig(keyframe_every_n=2, asynchronous=False))
    ids = pipe.set_prompts(PROMPTS)
    try:
        results = [pipe.process(_image(i, 60, 80), float(i)) for i in range(3)]
    finally:
        pipe.close()
    assert [r.keyframe for r in results] == [True, False, True]
    for res in results:
        assert res.labels.shape == (60, 80) and res.labels.dtype == np.uint16
        assert set(np.unique(res.labels)) <= {0, *ids.values()}
        assert res.patch_probs.shape[0] == len(PROMPTS) + 1
        assert np.allclose(res.patch_probs.sum(axis=0)[res.patch_probs[0] < 1], 1, atol=1e-4)
        assert {"preprocess", "clip_forward", "heads_pooling"} <= set(res.timings)


@pytest.mark.slow
def test_onnxruntime_follows_the_threads_setting(tmp_path, caplog):
    """onnxruntime fixes its thread count when a session opens; the `threads` setting must hold
    from the start and when it changes while running, with the same outputs."""
    seg = tiny_segmenter(tmp_path, backend="onnxruntime", precision="fp32", threads=1)
    seg.set_prompts(PROMPTS)
    # 12x16 patches: frames under reproducible.SMALL patches run on one thread whatever is set
    frame = _image(0, 192, 256)

    def intra_op_threads() -> int:
        return seg.dense.session_for(seg.dense.threads).get_session_options().intra_op_num_threads

    first = seg.segment(frame)
    assert (seg.dense.threads, intra_op_threads()) == (1, 1)
    seg.reconfigure(threads=2)
    second = seg.segment(frame)
    assert (seg.dense.threads, intra_op_threads()) == (2, 2)
    np.testing.assert_allclose(second.patch_probs, first.patch_probs, atol=1e-5)

    def opened_after_change(threads: int) -> bool:
        caplog.clear()
        seg.reconfigure(threads=threads)
        with caplog.at_level(logging.INFO, logger="ovseg_ros.core.backends.onnx_encoder"):
            seg.segment(frame)
        return any("opened a session with" in r.getMessage() for r in caplog.records)

    assert opened_after_change(3)
    assert not opened_after_change(2)  # the two most recent counts stay open
    assert opened_after_change(1)  # 1 was the least recent: closed when 3 opened
