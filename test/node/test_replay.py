"""The replay node: shipped samples, folders, compressed output, looping, and replay -> ovseg."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.ros_helpers import RosHarness, wait_for
from helpers.tiny_models import tiny_files

pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from ovseg_ros.io import decode_compressed, list_images, read_image  # noqa: E402
from ovseg_ros.io.media import MediaError  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.node.replay_node import ReplayNode, samples_dir  # noqa: E402
from ovseg_ros.node.segment_node import SegmentNode  # noqa: E402


@pytest.fixture(scope="module")
def ros(ros_domain_id):
    with RosHarness(ros_domain_id) as harness:
        yield harness


def replay(ros, ns: str, **params):
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return ros.add(ReplayNode(context=ros.context, namespace=ns, parameter_overrides=overrides))


def test_samples_are_small_and_licensed():
    files = list_images(samples_dir())
    assert [f.name for f in files] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
    for f in files:
        assert f.stat().st_size <= 100_000 and max(read_image(f).shape[:2]) <= 640
    assert (samples_dir() / "LICENSE.md").read_text().count("CC0") >= 2


def test_replay_publishes_the_samples_as_rgb8_and_loops(ros):
    frames = ros.collect(Image, "/rp1/image", Q.reliable(10))
    node = replay(ros, "/rp1", rate=20.0, qos="reliable")  # ordered, lossless for the check
    assert wait_for(lambda: frames.count >= 4, timeout=20)
    expected = [read_image(f) for f in list_images(samples_dir())]
    got = frames.snapshot()[:4]
    for msg, rgb in zip(got, expected + expected[:1], strict=True):
        assert (msg.encoding, msg.height, msg.width) == ("rgb8", *rgb.shape[:2])
        assert msg.header.frame_id == "camera" and msg.header.stamp.sec > 0
        data = np.frombuffer(bytes(msg.data), np.uint8).reshape(rgb.shape)
        assert np.array_equal(data, rgb)
    ros.remove(node)


def test_replay_compressed_without_looping(ros, tmp_path):
    import cv2

    for i in range(2):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((300, 200, 3), 60 * i, np.uint8))
    frames = ros.collect(CompressedImage, "/rp2/image/compressed", Q.reliable(10))
    node = replay(ros, "/rp2", rate=20.0, transport="compressed", loop=False, max_size=150,
                  source=str(tmp_path), frame_id="cam2", qos="reliable")
    assert wait_for(lambda: frames.count >= 2, timeout=20)
    assert not wait_for(lambda: frames.count > 2, timeout=0.5)  # no loop
    for i, msg in enumerate(frames.snapshot()):
        rgb = decode_compressed(msg.format, msg.data)
        assert msg.format == "jpeg" and rgb.shape == (150, 100, 3)
        assert abs(int(rgb.mean()) - 60 * i) <= 2 and msg.header.frame_id == "cam2"
    ros.remove(node)


def test_replay_loops_a_video(ros, tmp_path):
    from ovseg_ros.io import VideoWriter

    video = tmp_path / "clip.avi"
    with VideoWriter(video, fps=10) as writer:
        for i in range(3):
            writer.write(np.full((48, 64, 3), 80 * i, np.uint8))
    frames = ros.collect(Image, "/rp5/image", Q.reliable(10))
    node = replay(ros, "/rp5", rate=20.0, source=str(video), qos="reliable")
    assert wait_for(lambda: frames.count >= 7, timeout=20)  # 3 frames, looped twice+
    means = [int(np.frombuffer(bytes(m.data), np.uint8).mean()) for m in frames.snapshot()[:7]]
    assert all(abs(a - b) <= 3 for a, b in zip(means, [0, 80, 160] * 2 + [0], strict=True))
    ros.remove(node)


def test_replay_refuses_a_missing_source_at_start_up(ros, tmp_path):
    with pytest.raises(MediaError):
        ReplayNode(context=ros.context, namespace="/rp3", parameter_overrides=[
            Parameter("source", value=str(tmp_path / "missing"))])


def test_replay_feeds_the_segmentation_node(ros, tmp_path):
    name, clip, heads = tiny_files(tmp_path)
    seg = ros.add(SegmentNode(context=ros.context, namespace="/rp4", parameter_overrides=[
        Parameter("model", value=name), Parameter("clip_weights", value=str(clip)),
        Parameter("heads", value=str(heads)), Parameter("device", value="cpu"),
        Parameter("input_size", value=0), Parameter("prompts", value=["cat", "cup"])]))
    labels = ros.collect(Image, "/rp4/ovseg/labels")
    rep = replay(ros, "/rp4", rate=10.0, max_size=96, encoding="bgr8")
    assert wait_for(lambda: len({(m.height, m.width) for m in labels.snapshot()}) >= 2,
                    timeout=30)
    sizes = {(m.height, m.width) for m in labels.snapshot()}
    assert sizes <= {(96, 96), (64, 96)}  # the samples, longest side scaled to 96
    assert seg.health.rejected == 0
    ros.remove(rep)
    ros.remove(seg)
