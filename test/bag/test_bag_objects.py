"""Objects offline: `ovseg bag --objects` writes the node's object topics, read back here by
Foxglove's `mcap` reader with the definitions embedded in the file (no ovseg_ros code decodes
them)."""

from __future__ import annotations

import cv2
import numpy as np
from helpers.bag_helpers import DEPTH, model_args, run_bag

from ovseg_ros.bag.sample import write_sample_bag


def decoded(path) -> dict[str, list]:
    """{topic: [decoded message, ...]} in log-time order, through mcap + mcap_ros2."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out: dict[str, list] = {}
    for file in sorted(path.glob("*.mcap")):
        with file.open("rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for _, channel, _, msg in reader.iter_decoded_messages(log_time_order=True):
                out.setdefault(channel.topic, []).append(msg)
    return out


def image_array(msg) -> np.ndarray:
    dtype = {"mono8": np.uint8, "mono16": "<u2", "16UC1": "<u2", "32SC1": "<i4"}[msg.encoding]
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def test_bag_objects_read_back_by_another_reader(tmp_path):
    src = write_sample_bag(tmp_path / "in", frames=4, size=96)
    out = tmp_path / "out"
    assert run_bag(src, "-o", out, *model_args(tmp_path), *DEPTH, "--objects",
                   "--hydra-instances", "--object-min-area", "0.002") == 0
    topics = decoded(out)
    for name in ("instances", "detections", "detections_3d", "detection_markers",
                 "hydra_instances"):
        assert len(topics[f"/ovseg/{name}"]) == 4, name
    for labels_msg, ids_msg, dets, hydra in zip(
            topics["/ovseg/labels"], topics["/ovseg/instances"], topics["/ovseg/detections"],
            topics["/ovseg/hydra_instances"], strict=True):
        labels, ids = image_array(labels_msg), image_array(ids_msg)
        assert ids_msg.header.stamp == labels_msg.header.stamp
        assert int(ids.max()) == len(dets.detections) > 0
        for k, det in enumerate(dets.detections, start=1):
            mask = ids == k
            ys, xs = np.nonzero(mask)
            c, sx, sy = det.bbox.center.position, det.bbox.size_x, det.bbox.size_y
            assert (c.x - sx / 2, c.y - sy / 2, c.x + sx / 2, c.y + sy / 2) == \
                (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert len(np.unique(labels[mask])) == 1
            assert cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] == 2
        packed = image_array(hydra).astype(np.int64) & 0xFFFFFFFF  # Hydra's reading
        np.testing.assert_array_equal(packed & 0xFFFF, labels)
        np.testing.assert_array_equal(packed >> 16, ids)
    for det3d in topics["/ovseg/detections_3d"]:
        for det in det3d.detections:
            assert det.bbox.center.position.z > 0 and det.bbox.size.x > 0
