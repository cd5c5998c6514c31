"""`backend` and `precision: int8` through the front ends: the `ovseg` command and the node
(parameters over rclpy), end to end on the tiny model; a missing onnxruntime is one clear
error."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from helpers.ros_helpers import image_fields_msg, make_picture, wait_for
from helpers.tiny_models import tiny_files

from ovseg_ros.cli.main import main
from ovseg_ros.io.media import write_png


@pytest.fixture(scope="module")
def model_args(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backend_model")
    name, clip, heads = tiny_files(folder)
    return ["--model", name, "--clip-weights", str(clip), "--heads", str(heads),
            "--device", "cpu", "--input-size", "64", "--cache-dir", str(folder / "cache")]


@pytest.mark.slow
def test_cli_runs_onnxruntime_int8_end_to_end(tmp_path, model_args):
    img = tmp_path / "a.png"
    write_png(img, make_picture(48, 64))
    out = tmp_path / "out"
    assert main(["segment", str(img), "--prompts", "cat,dog", "-o", str(out),
                 "--backend", "onnxruntime", "--precision", "int8", *model_args]) == 0
    report = json.loads((out / "a.json").read_text())
    assert report["size"] == [48, 64] and (out / "a_labels.png").is_file()
    assert report["timings_s"]["clip_forward"] > 0


def test_cli_verbose_shows_the_measured_choice(tmp_path, model_args, caplog):
    img = tmp_path / "a.png"
    write_png(img, make_picture(48, 64))
    with caplog.at_level("INFO"):
        assert main(["-v", "segment", str(img), "--prompts", "cat", "-o", str(tmp_path / "o"),
                     "--backend", "auto", "--precision", "fp32", *model_args]) == 0
    compute = [r.getMessage() for r in caplog.records if r.getMessage().startswith("compute:")]
    assert len(compute) == 1 and "fastest measured" in compute[0], compute


def test_cli_without_onnxruntime_is_one_clear_error(tmp_path, model_args, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    img = tmp_path / "a.png"
    write_png(img, np.zeros((32, 32, 3), np.uint8))
    assert main(["segment", str(img), "--prompts", "cat", "--backend", "onnxruntime",
                 "--precision", "fp32", *model_args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install onnxruntime onnx onnxscript" in err[0], err


@pytest.mark.slow
def test_node_parameters_select_onnxruntime_int8(ros, autostart_node, tmp_path):
    pytest.importorskip("rclpy")
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from ovseg_ros.node import qos as Q

    node, ns = autostart_node(backend="onnxruntime", precision="int8",
                              cache_dir=str(tmp_path / "cache"))
    assert node.segmenter.runtime.backend == "onnxruntime" and node.segmenter.runtime.int8
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(2))
    msg = image_fields_msg(make_picture(32, 48))
    assert wait_for(lambda: pub.publish(msg) or labels.count >= 1, period=0.1)

    def values() -> dict[str, str]:
        for arr in reversed(diags.snapshot()):
            for st in arr.status:
                if st.name.startswith(f"{ns[1:]}/ovseg"):
                    return {kv.key: kv.value for kv in st.values}
        return {}

    assert wait_for(lambda: values().get("precision") == "int8")
    assert values()["backend"] == "onnxruntime"
    assert values()["compute_choice"] == "the backend and precision settings"


def test_node_refuses_int8_on_torch_at_start_up(ros, autostart_node):
    with pytest.raises(RuntimeError, match="needs backend onnxruntime"):
        autostart_node(backend="torch", precision="int8")
