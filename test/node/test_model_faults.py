"""Faults: bad weights at start-up (one error line, no traceback), out of memory on a frame
(dropped, logged, cache freed, next frame served), Ctrl-C while text is being encoded."""

from __future__ import annotations

import signal
import time

import pytest
import torch
from helpers.processes import assert_one_line_failure, tiny_node
from helpers.ros_helpers import (
    RosHarness,
    image_fields_msg,
    make_picture,
    send_until,
    stamp,
    wait_for,
)
from helpers.tiny_models import tiny_files, write_heads

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.core import device as device_mod  # noqa: E402
from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import SetPrompts  # noqa: E402


@pytest.mark.slow
def test_wrong_head_width_and_missing_clip_weights_fail_start_up_in_one_line(
        tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # inherited: the hub fails fast, no network wait
    name, clip, heads = tiny_files(tmp_path)
    wide = write_heads(tmp_path / "heads-768.pt", width=768)  # a ViT-B checkpoint, tiny model
    base = {"model": name, "clip_weights": str(clip), "heads": str(heads), "device": "cpu",
            "precision": "fp32", "backend": "torch", "cache_dir": str(tmp_path / "cache")}
    cases = {  # started together: they spend most of their time importing torch
        "width": ({**base, "heads": str(wide)}, ["does not fit this model", "has shape"]),
        "tag": ({**base, "model": "ViT-B-16", "clip_weights": "laion2b_s34b_b88k"},
                ["could not get CLIP weights ViT-B-16/laion2b_s34b_b88k", "Without network",
                 str(tmp_path / "cache" / "clip" / "ViT-B-16_laion2b_s34b_b88k.bin")]),
        "file": ({**base, "clip_weights": str(tmp_path / "gone.pt")},
                 ["CLIP weights file not found", "gone.pt"]),
    }
    procs = {k: tiny_node(tmp_path, {**params, "__ns": f"/fault_{k}"})
             for k, (params, _) in cases.items()}
    for key, p in procs.items():
        assert_one_line_failure(p, p.wait(180), *cases[key][1])


def test_free_device_memory_only_touches_cuda(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    assert device_mod.free_device_memory(torch.device("cpu")) is False and calls == []
    assert device_mod.free_device_memory(torch.device("cuda", 0)) is True and calls == [1]
    assert device_mod.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert device_mod.is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not device_mod.is_out_of_memory(RuntimeError("shape mismatch"))


def test_out_of_memory_drops_the_frame_and_the_next_one_is_served(ros, seg_node, monkeypatch,
                                                                  capfd):
    node, ns = seg_node()
    freed: list[str] = []
    real_free = device_mod.free_device_memory
    monkeypatch.setattr(device_mod, "free_device_memory",
                        lambda device: freed.append(device.type) or real_free(device))
    real = node.pipeline.process_batch

    def process(frames, primary=0):  # what a 4K frame does to a small GPU
        if frames[0][0].shape[1] > 200:
            big = torch.empty(1)  # a tensor the traceback holds until the handler is done
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 20 GiB "
                                              f"({big.numel()})")
        return real(frames, primary)

    node.pipeline.process_batch = process
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    huge = image_fields_msg(make_picture(20, 300), stamp=stamp(70))
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    pub.publish(huge)
    assert wait_for(lambda: node.processor.frames_out_of_memory == 1)
    assert freed == ["cpu"]  # called with the model's device; only CUDA empties a cache
    assert "frame stamped 70.000 (300x20) dropped: out of memory" in node.health._error
    good = image_fields_msg(make_picture(20, 40), stamp=stamp(71))
    assert send_until(pub, lambda: good, lambda: segs.count >= 1)
    # the dropped frame has no output; send_until may have sent (and the node served) 71 twice
    assert {m.header.stamp.sec for m in segs.snapshot()} == {71}
    assert node.health._error is None and node.worker.stats().failed == 0
    time.sleep(0.2)  # rcutils writes the log line from the worker thread
    err = capfd.readouterr().err
    assert "out of memory on 300x20: frame dropped, device cache freed" in err, err


@pytest.mark.slow
def test_ctrl_c_during_text_encoding_exits_without_waiting_for_it(tmp_path, ros_domain_id):
    name, clip, heads = tiny_files(tmp_path)
    # A text encoder stuck for 300 s on a big vocabulary (a slow model, many new names).
    slow = ("from ovseg_ros.core.text import TextEmbeddingCache\n"
            "_embed = TextEmbeddingCache.embed\n"
            "def _slow(self, names):\n"
            "    if len(names) >= 50:\n"
            "        print('ENCODING STARTED', flush=True)\n"
            "        time.sleep(300)\n"
            "    return _embed(self, names)\n"
            "TextEmbeddingCache.embed = _slow\n")
    p = tiny_node(tmp_path, {"model": name, "clip_weights": str(clip), "heads": str(heads),
                             "device": "cpu", "precision": "fp32", "backend": "torch",
                             "__ns": "/fault_sigint"},
                  patch=slow)
    try:
        assert wait_for(lambda: p.has("ready"), timeout=180), p.output
        with RosHarness(ros_domain_id) as ros:
            client = ros.helper.create_client(SetPrompts, "/fault_sigint/ovseg/set_prompts")
            assert client.wait_for_service(timeout_sec=30.0)
            client.call_async(SetPrompts.Request(prompts=[f"object {i}" for i in range(100)]))
            assert wait_for(lambda: p.has("ENCODING STARTED"), timeout=30), p.output
        t0 = time.monotonic()
        p.proc.send_signal(signal.SIGINT)
        rc = p.wait(60)  # long before the encoding could end: it is not waited for
        print(f"exit {time.monotonic() - t0:.2f} s after SIGINT during text encoding")
        assert rc == 0, p.output
        assert "Traceback" not in p.output, p.output
    finally:
        if p.proc.poll() is None:
            p.proc.kill()

