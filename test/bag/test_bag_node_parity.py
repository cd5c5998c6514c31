"""`ovseg bag` writes, for every frame, the very bytes the live node publishes for it: the
same bag is played into the node (real rclpy) and processed by `ovseg bag`, and every output
message is compared after serialization, header included. The only fields allowed to differ
are the ones the node fills from its clock (Segmentation's inference_ms, latency_ms,
frames_dropped: 0 in a bag, where they are not reproducible; label map stamps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.bag_helpers import DEPTH, model_args, read_rosbags, run_bag
from helpers.ros_helpers import wait_for

rclpy = pytest.importorskip("rclpy")
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from ovseg_ros.bag.sample import write_sample_bag  # noqa: E402
from ovseg_ros.msg import LabelMap, Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402

OUTPUTS = {"labels": Image, "confidence": Image, "confidence_mono8": Image, "overlay": Image,
           "points": PointCloud2, "markers": MarkerArray, "segmentation": Segmentation,
           "instances": Image, "hydra_instances": Image}
# vision_msgs: the real package where a ROS install has it, else our build of its definitions.
OBJECT_OUTPUTS = {"detections": "Detection2DArray", "detections_3d": "Detection3DArray",
                  "detection_markers": MarkerArray}


def canonical(msg, what: str) -> bytes:
    """rclpy's serialization with the alignment padding zeroed (rclpy leaves it uninitialised:
    two serializations of one message can differ there), by a round trip through rosbags."""
    from ovseg_ros.frame.types import default_distro, typestore
    from ovseg_ros.node.wire import type_name

    raw = serialize_message(msg)
    store, msgtype = typestore(default_distro()), type_name(type(msg))
    fixed = bytes(store.serialize_cdr(store.deserialize_cdr(raw, msgtype), msgtype))
    assert len(fixed) == len(raw), what
    return fixed


def test_bag_outputs_equal_the_live_nodes_bytes(tmp_path, ros, autostart_node, tiny):
    from vision_msgs.msg import LabelInfo

    src = write_sample_bag(tmp_path / "in", frames=3, size=48, half_depth=True)
    out = tmp_path / "out"
    # The node's cache folder: both then use the same text embeddings (an embedding encoded
    # with another torch thread count can differ in the last bit, and is kept on disk).
    cache = str(Path(tiny[1]).parent / "cache")
    assert run_bag(src, "-o", out, *model_args(tmp_path), *DEPTH, "--overlay",
                   "--cache-dir", cache, "--objects", "--hydra-instances") == 0
    written: dict[str, list[tuple[int, bytes]]] = {}
    for topic, _, t, raw in read_rosbags(out):
        written.setdefault(topic, []).append((t, raw))

    import vision_msgs.msg

    node, ns = autostart_node(use_depth=True, qos="reliable", prompts=["cat", "dog", "car"],
                              input_size=0, objects=True, hydra_instances=True)
    outputs = {**OUTPUTS, **{name: cls if not isinstance(cls, str)
                             else getattr(vision_msgs.msg, cls)
                             for name, cls in OBJECT_OUTPUTS.items()}}
    got = {name: ros.collect(cls, f"{ns}/ovseg/{name}", Q.outputs())
           for name, cls in outputs.items()}
    label_map = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    label_info = ros.collect(LabelInfo, f"{ns}/ovseg/label_info", Q.latched())
    pub = ros.helper.create_publisher
    pubs = {"/camera/image_raw": (pub(Image, f"{ns}/image", Q.reliable(5)), Image),
            "/camera/depth/image_raw": (pub(Image, f"{ns}/depth", Q.reliable(5)), Image),
            "/camera/camera_info": (pub(CameraInfo, f"{ns}/camera_info", Q.reliable(5)),
                                    CameraInfo)}
    assert wait_for(lambda: all(p.get_subscription_count() > 0 for p, _ in pubs.values()))
    # Every output matched before the first frame: a volatile subscription matched later
    # misses it.
    assert wait_for(lambda: all(c.subscription.get_publisher_count() > 0 for c in got.values()))
    frames = 0
    # Play the input in bag order, frame by frame: depth + camera_info (5 ms after the colour
    # frame in the bag) are sent before the colour frame here, as the node pairs within slop.
    inputs = [r for r in read_rosbags(src) if r[0] in pubs]
    by_frame: dict[int, list] = {}
    for topic, _, t, raw in inputs:
        by_frame.setdefault(t // 100_000_000, []).append((topic, raw))
    pairing = node.cameras[0].depth.pairing
    for key in sorted(by_frame):
        msgs = sorted(by_frame[key], key=lambda r: r[0] == "/camera/image_raw")
        for topic, raw in msgs:
            p, cls = pubs[topic]
            if topic == "/camera/image_raw":  # the bag pairs with all of it at hand: so here
                def has_depth(n: int = frames) -> bool:
                    got_now = pairing.stats()
                    return (got_now.depth_received, got_now.info_received) == (n + 1, n + 1)

                assert wait_for(has_depth)
            p.publish(deserialize_message(raw, cls))
        frames += 1
        assert wait_for(lambda n=frames: got["segmentation"].count >= n, timeout=60)
    assert frames == 3
    assert wait_for(lambda: all(got[n].count == 3 for n in outputs)), {
        n: got[n].count for n in outputs if got[n].count != 3}  # the outputs that differ
    for name in outputs:
        topic = f"/ovseg/{name}"
        assert len(written[topic]) == 3, topic
        for (t, raw), live in zip(written[topic], got[name].snapshot(), strict=True):
            if name == "segmentation":  # the node's clock-derived fields
                live.inference_ms = live.latency_ms = 0.0
                live.frames_dropped = 0
            assert canonical(live, name) == raw, f"{topic} at {t} differs from the node's"
            header = live.markers[0].header if "markers" in name else live.header
            assert header.stamp.sec * 10**9 + header.stamp.nanosec == t  # bag time = stamp
    for collector, topic in ((label_map, "/ovseg/label_map"), (label_info, "/ovseg/label_info")):
        [(t, raw)] = written[topic]
        live = collector.last()
        live.header.stamp.sec, live.header.stamp.nanosec = divmod(t, 10**9)
        assert canonical(live, topic) == raw, topic
