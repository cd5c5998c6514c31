"""scripts/gpu_check.sh's module runs end to end on the CPU (`--device cpu --smoke`), so the
script a GPU machine runs is known to work up to the CUDA-only parts."""

from __future__ import annotations

import json

import pytest

from ovseg_ros.bench import gpu_check


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--smoke", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert set(results["precisions"]) == {"fp32", "fp16", "bf16"}
    for precision, entry in results["precisions"].items():
        for key in ("448x448_b1", "448x448_b4", "640x480_b1"):
            run = entry[key]
            assert run["frames_per_s"] > 0 and run["p90_ms"] >= run["median_ms"] > 0
            assert set(run["stages_ms"]) == {"preprocess", "clip_forward", "heads_pooling",
                                             "upsample_argmax"}
        assert entry["sync"]["torch_cuda_synchronize_calls"] == 0
        if precision != "fp32":
            assert 0 < entry["vs_fp32"]["pixel_agreement"] <= 1
    ort = results["onnxruntime"]["CPUExecutionProvider"]  # stands in for the GPU providers
    assert ort["max_abs_diff_vs_torch_fp32"] < 1e-4 and ort["dense_forward_ms"] > 0
