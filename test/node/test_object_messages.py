"""The objects' messages (frame/object_messages.py) from their CDR bytes, as an rclpy subscriber
reads them with the installed vision_msgs, semantic_inference_msgs, sensor_msgs and
visualization_msgs types: the instance image, Detection2DArray (every box = its mask's box),
Detection3DArray on a known plane, the box markers, Hydra's 32SC1 image and the FeatureImage
with instance ids. Our vision_msgs definitions hash like the real package (4.1.1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rclpy  # noqa: F401  (a missing rclpy is a collection error, not a skip)
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from semantic_inference_msgs.msg import FeatureImage
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import Marker, MarkerArray

from ovseg_ros.frame import object_messages as om
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.types import default_distro, definition
from ovseg_ros.geometry import PinholeIntrinsics
from ovseg_ros.node.wire import check_wire
from ovseg_ros.objects import boxes_3d, find_instances
from ovseg_ros.viz import colour_for_id

H, W = 90, 120
INTR = PinholeIntrinsics(100.0, 100.0, 59.5, 44.5, W, H)
B = builder_for(default_distro())
HEADER = B.header(1712, 345_000_123, "cam_optical")
NAMES = {1: "red mug", 2: "chair", 5: "door"}
TRACKS = np.array([17, 4, 9, 30])
# RIHS01 hashes of the real vision_msgs 4.1.1 (ros-perception/vision_msgs, ros2 branch) as its
# own colcon build (rosidl) writes them to share/vision_msgs/msg/<name>.json.
REAL_HASHES = {
    "Point2D":
        "RIHS01_eab0e83f44ab4de92ceaf76dd7d0e7638f2bdd1d16ffbe16c7a136c48e407247",
    "Pose2D":
        "RIHS01_b0b5d1d7b4c20dd4fcde3ed1d4b289a919290572007d67a97043814db25d3648",
    "BoundingBox2D":
        "RIHS01_008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f",
    "ObjectHypothesis":
        "RIHS01_51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90",
    "ObjectHypothesisWithPose":
        "RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc",
    "Detection2D":
        "RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea",
    "Detection2DArray":
        "RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968",
    "BoundingBox3D":
        "RIHS01_bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698",
    "Detection3D":
        "RIHS01_ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b",
    "Detection3DArray":
        "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018",
    "LabelInfo":
        "RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783",
    "VisionClass":
        "RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a",
}


def received(msg, cls):
    """What an rclpy subscriber reads from the bytes the node publishes."""
    return deserialize_message(B.serialize(msg), cls)


def scene():
    """Two mugs, a chair and a door; depth: the chair on a plane 1.8 m away, the rest 4 m."""
    lab = np.zeros((H, W), np.uint16)
    lab[10:30, 10:25] = 1
    lab[50:70, 90:110] = 1
    lab[35:80, 30:70] = 2
    lab[0:40, 80:95] = 5
    conf = np.linspace(0.2, 0.9, H * W, dtype=np.float32).reshape(H, W)
    frame = find_instances(lab, conf, NAMES, min_area=0.005)
    depth = np.full((H, W), 4.0, np.float32)
    depth[35:80, 30:70] = 1.8
    return lab, frame, depth


def image_array(msg: Image) -> np.ndarray:
    dtype = {"16UC1": "<u2", "32SC1": "<i4"}[msg.encoding]
    assert not msg.is_bigendian and msg.step == msg.width * np.dtype(dtype).itemsize
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def test_our_vision_msgs_hash_like_the_real_package():
    share = Path(__import__("vision_msgs").__file__).resolve().parents[4] / "share"
    for name in ("Point2D", "Pose2D", "BoundingBox2D", "ObjectHypothesis",
                 "ObjectHypothesisWithPose", "Detection2D", "Detection2DArray", "BoundingBox3D",
                 "Detection3D", "Detection3DArray", "LabelInfo", "VisionClass"):
        ours = definition(default_distro(), f"vision_msgs/msg/{name}")[1]
        assert ours == REAL_HASHES[name], name
        installed = share / "vision_msgs" / "msg" / f"{name}.json"
        hashes = json.loads(installed.read_text())["type_hashes"]
        assert hashes[0]["type_name"] == f"vision_msgs/msg/{name}"
        assert hashes[0]["hash_string"] == ours, name


def test_the_wire_check_passes_for_the_object_types():
    check_wire(B, [Detection2DArray, Detection3DArray, Image, MarkerArray, FeatureImage])


def test_instances_image_and_detections_agree_box_for_box():
    lab, frame, _ = scene()
    ids_msg = received(om.instances_image_msg(B, frame, HEADER), Image)
    assert ids_msg.encoding == "16UC1" and ids_msg.header.frame_id == "cam_optical"
    assert (ids_msg.header.stamp.sec, ids_msg.header.stamp.nanosec) == (1712, 345_000_123)
    ids = image_array(ids_msg)
    det = received(om.detections_2d_msg(B, frame, TRACKS, HEADER), Detection2DArray)
    assert len(det.detections) == len(frame) == int(ids.max()) == 4
    for k, d in enumerate(det.detections, start=1):
        mask = ids == k
        ys, xs = np.nonzero(mask)
        # pixel u covers [u, u + 1): the mask's box is [min, max + 1)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        assert (d.bbox.center.position.x, d.bbox.center.position.y) == ((x0 + x1) / 2,
                                                                          (y0 + y1) / 2)
        assert (d.bbox.size_x, d.bbox.size_y, d.bbox.center.theta) == (x1 - x0, y1 - y0, 0.0)
        assert len(set(np.unique(lab[mask]))) == 1
        hyp = d.results[0].hypothesis
        assert hyp.class_id == NAMES[int(lab[mask][0])]
        assert hyp.score == pytest.approx(frame.instances[k - 1].score, rel=1e-6)
        assert d.id == str(TRACKS[k - 1])
        assert d.results[0].pose.pose.orientation.w == 1.0
        assert d.header.frame_id == "cam_optical"
    assert [d.results[0].hypothesis.class_id for d in det.detections] == [
        "red mug", "red mug", "chair", "door"]


def test_detections_3d_on_a_known_plane(make_node, spin_until):
    _, frame, depth = scene()
    boxes = boxes_3d(frame.ids, len(frame), depth, INTR, trim=0.0, min_points=10)
    msg = om.detections_3d_msg(B, frame, TRACKS, boxes, HEADER)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub = make_node("det3d_talker").create_publisher(Detection3DArray, "detections_3d", qos)
    got = []
    make_node("det3d_listener").create_subscription(Detection3DArray, "detections_3d",
                                                    got.append, qos)
    assert spin_until(lambda: pub.get_subscription_count() >= 1), "no discovery"
    pub.publish(received(msg, Detection3DArray))
    assert spin_until(lambda: got), "no detections received"
    chair = next(d for d in got[0].detections if d.results[0].hypothesis.class_id == "chair")
    assert chair.id == "9" and chair.bbox.center.position.z == pytest.approx(1.8)
    assert chair.bbox.size.x == pytest.approx(39 * 1.8 / 100.0)
    assert chair.bbox.size.y == pytest.approx(44 * 1.8 / 100.0)
    assert chair.bbox.center.position.x == pytest.approx((49.5 - 59.5) * 1.8 / 100.0)
    assert chair.bbox.center.orientation.w == 1.0
    assert len(got[0].detections) == len(boxes.boxes) == 4


def test_box_markers():
    _, frame, depth = scene()
    boxes = boxes_3d(frame.ids, len(frame), depth, INTR, trim=0.0, min_points=10)
    msg = received(om.box_markers_msg(B, frame, TRACKS, boxes, HEADER), MarkerArray)
    first, *rest = msg.markers
    assert first.action == Marker.DELETEALL
    cubes = [m for m in rest if m.type == Marker.CUBE]
    texts = [m for m in rest if m.type == Marker.TEXT_VIEW_FACING]
    assert [m.id for m in cubes] == [m.id for m in texts] == [1, 2, 3, 4]
    assert {m.ns for m in cubes} == {om.BOX_NS} and {m.ns for m in texts} == {om.LABEL_NS}
    chair_cube, chair_text = cubes[2], texts[2]
    assert chair_cube.pose.position.z == pytest.approx(1.8)
    assert chair_cube.scale.z == pytest.approx(om.MIN_MARKER_SIZE_M)  # flat: still visible
    r, g, b = colour_for_id(2)
    assert (chair_cube.color.r, chair_cube.color.g, chair_cube.color.b) == pytest.approx(
        (r / 255, g / 255, b / 255))
    distance = boxes.boxes[2].distance
    assert chair_text.text == f"chair #9 {distance:.1f} m"
    assert chair_text.pose.position.y < chair_cube.pose.position.y - chair_cube.scale.y / 2


def test_hydra_image_decodes_with_hydras_rule():
    lab, frame, _ = scene()
    msg = received(om.hydra_image_msg(B, lab, frame, HEADER), Image)
    assert msg.encoding == "32SC1"
    packed = image_array(msg).astype(np.int64)
    assert np.array_equal(packed & 0xFFFF, lab)  # InstanceImageReceiver: labels
    assert np.array_equal((packed >> 16).astype(np.int16), frame.ids)  # and instances


def test_feature_image_carries_one_vector_per_instance():
    _, frame, _ = scene()
    vectors = np.random.default_rng(0).normal(size=(len(frame), 6)).astype(np.float32)
    msg = received(om.instance_feature_image_msg(B, frame, vectors, HEADER), FeatureImage)
    assert list(msg.mask_ids) == [1, 2, 3, 4]
    assert msg.image.encoding == "16UC1"
    assert np.array_equal(image_array(msg.image), frame.ids)
    for k, f in enumerate(msg.features):
        assert np.array_equal(np.asarray(f.data, np.float32), vectors[k])
    with pytest.raises(ValueError, match="vectors for"):
        om.instance_feature_image_msg(B, frame, vectors[:2], HEADER)


def test_same_message_same_bytes_as_rclpy():
    """rclpy re-serialises what it read to the same bytes: the layouts agree exactly."""
    _, frame, depth = scene()
    boxes = boxes_3d(frame.ids, len(frame), depth, INTR, trim=0.0, min_points=10)
    for msg, cls in ((om.detections_2d_msg(B, frame, TRACKS, HEADER), Detection2DArray),
                     (om.detections_3d_msg(B, frame, TRACKS, boxes, HEADER), Detection3DArray)):
        raw = B.serialize(msg)
        assert serialize_message(deserialize_message(raw, cls)) == raw
