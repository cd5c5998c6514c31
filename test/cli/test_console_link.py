"""The console's reading of the node (cli/console/link.py) without ROS: which cameras a node
has from its publishers, and label, overlay and relevance images from message fields (row
padding and byte order honoured)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ovseg_ros.cli.console.link import (
    cameras_of,
    float_array,
    label_array,
    rgb_array,
    split_name,
)
from ovseg_ros.io.image_codec import ImageDecodeError

IMAGE = ["sensor_msgs/msg/Image"]


def test_cameras_come_from_the_nodes_label_publishers():
    topics = [("/robot1/ovseg/labels", IMAGE), ("/robot1/ovseg/front/labels", IMAGE),
              ("/robot1/ovseg/rear/labels", IMAGE), ("/robot1/ovseg/label_map",
                                                     ["ovseg_ros/msg/LabelMap"]),
              ("/robot1/ovseg/front/overlay", IMAGE), ("/robot1/other/labels", IMAGE),
              ("/robot1/ovseg/odd/labels", ["std_msgs/msg/String"])]
    assert cameras_of("/robot1/ovseg", topics) == ["", "front", "rear"]
    assert cameras_of("/ovseg", []) == []
    assert split_name("/robot1/ovseg") == ("/robot1", "ovseg")
    assert split_name("/ovseg") == ("/", "ovseg")


def fields(arr: np.ndarray, encoding: str, pad: int = 0, big: bool = False):
    """Image message fields for `arr` with `pad` bytes at the end of every row."""
    h, w = arr.shape[:2]
    data = arr.astype(arr.dtype.newbyteorder(">" if big else "<")).tobytes()
    row = len(data) // h
    rows = b"".join(data[i * row:(i + 1) * row] + b"\xee" * pad for i in range(h))
    return SimpleNamespace(encoding=encoding, height=h, width=w, step=row + pad,
                           is_bigendian=int(big), data=rows)


def test_label_images_read_back_exactly():
    ids8 = np.arange(24, dtype=np.uint8).reshape(4, 6)
    np.testing.assert_array_equal(label_array(fields(ids8, "mono8", pad=2)), ids8)
    ids16 = (np.arange(24, dtype=np.uint16) * 2000).reshape(4, 6)
    for big in (False, True):
        out = label_array(fields(ids16, "mono16", pad=4, big=big))
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, ids16)
    with pytest.raises(ImageDecodeError, match="unexpected encoding"):
        label_array(fields(ids8, "rgb8"))


def test_overlay_and_relevance_images_read_back():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rgb_array(fields(rgb, "rgb8", pad=1)), rgb)
    rel = np.linspace(0, 1, 15, dtype=np.float32).reshape(3, 5)
    np.testing.assert_array_equal(float_array(fields(rel, "32FC1", pad=4)), rel)
    np.testing.assert_array_equal(float_array(fields(rel, "32FC1", big=True)), rel)
    with pytest.raises(ImageDecodeError):
        rgb_array(fields(rel, "32FC1"))
    truncated = fields(rgb, "rgb8")
    truncated.data = truncated.data[:-3]
    with pytest.raises(ImageDecodeError, match="truncated"):
        rgb_array(truncated)
