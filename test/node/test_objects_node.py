"""Objects over real rclpy: a node with `objects` and use_depth on, fed a colour frame and a
depth plane at 1.5 m twice; what arrives on ~/labels, ~/instances, ~/detections,
~/detections_3d, ~/detection_markers and ~/hydra_instances is checked against each other with
readers of our own (no ovseg_ros code decodes the bytes), and ~/query ranks the objects."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.depth_rig import Rig, info_msg, plane_mm
from helpers.ros_helpers import wait_for

rclpy = pytest.importorskip("rclpy")
vision_msgs = pytest.importorskip("vision_msgs.msg")
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from ovseg_ros.io.image_codec import encode_16uc1  # noqa: E402
from ovseg_ros.srv import Query  # noqa: E402


def image_array(msg: Image) -> np.ndarray:
    dtype = {"mono8": np.uint8, "mono16": "<u2", "16UC1": "<u2", "32SC1": "<i4"}[msg.encoding]
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def of_stamp(collector, stamp) -> list:
    """Messages stamped `stamp` (a MarkerArray by its markers' header)."""
    def stamp_of(msg):
        return msg.markers[0].header.stamp if isinstance(msg, MarkerArray) else msg.header.stamp
    return [m for m in collector.snapshot() if stamp_of(m) == stamp]


def pixel_box(det) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), half-open, from a Detection2D's centre and size."""
    c, sx, sy = det.bbox.center.position, det.bbox.size_x, det.bbox.size_y
    return (round(c.x - sx / 2), round(c.y - sy / 2), round(c.x + sx / 2), round(c.y + sy / 2))


@pytest.fixture
def scene(ros, autostart_node):
    node, ns = autostart_node(use_depth=True, qos="reliable", objects=True,
                              hydra_instances=True, object_min_area=0.002, box_min_points=5)
    rig = Rig(ros, ns)
    out = f"{ns}/ovseg"
    got = {"instances": ros.collect(Image, f"{out}/instances"),
           "hydra": ros.collect(Image, f"{out}/hydra_instances"),
           "det": ros.collect(vision_msgs.Detection2DArray, f"{out}/detections"),
           "det3d": ros.collect(vision_msgs.Detection3DArray, f"{out}/detections_3d"),
           "markers": ros.collect(MarkerArray, f"{out}/detection_markers")}
    pubs = node.cameras[0].publishers
    assert wait_for(lambda: all(pubs[k].get_subscription_count() > 0 for k in (
        "instances", "hydra_instances", "detections", "detections_3d", "detection_markers")))
    stamps = [rig.send(100 + i, encode_16uc1(plane_mm()), info_msg()) for i in range(2)]

    def arrived(stamp):
        return all(of_stamp(c, stamp) for c in (rig.labels, *got.values()))
    assert wait_for(lambda: all(arrived(s) for s in stamps), timeout=60)
    frames = [{k: of_stamp(c, s)[0] for k, c in (("labels", rig.labels), *got.items())}
              for s in stamps]
    return node, ns, frames


def test_instances_detections_and_hydra_agree_with_the_labels(scene):
    _, _, frames = scene
    for f in frames:
        labels, ids = image_array(f["labels"]), image_array(f["instances"])
        dets = list(f["det"].detections)
        assert f["instances"].encoding == "16UC1" and f["instances"].header == f["labels"].header
        assert dets and int(ids.max()) == len(dets)
        assert len({d.id for d in dets}) == len(dets)  # track ids unique in a frame
        for k, det in enumerate(dets, start=1):
            mask = ids == k
            ys, xs = np.nonzero(mask)
            assert pixel_box(det) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            classes = np.unique(labels[mask])
            assert len(classes) == 1 and classes[0] != 0  # one class, never background
            n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
            assert n == 2  # one connected region (and the background)
            hyp = det.results[0].hypothesis
            assert hyp.class_id and 0.0 < hyp.score <= 1.0
        # Hydra's InstanceImageReceiver: class in the low 16 bits, instance in the high 16.
        packed = image_array(f["hydra"]).astype(np.int64) & 0xFFFFFFFF
        assert f["hydra"].encoding == "32SC1"
        np.testing.assert_array_equal(packed & 0xFFFF, labels)
        np.testing.assert_array_equal(packed >> 16, ids)
    # The same frame twice: the same instances and the same track ids.
    first, second = frames
    np.testing.assert_array_equal(image_array(first["instances"]),
                                  image_array(second["instances"]))
    assert [d.id for d in first["det"].detections] == [d.id for d in second["det"].detections]


def test_3d_boxes_sit_on_the_depth_plane(scene):
    _, _, frames = scene
    for f in frames:
        boxes = list(f["det3d"].detections)
        assert boxes, "no 3D box on a plane that covers the frame"
        ids2d = {d.id for d in f["det"].detections}
        for det in boxes:
            assert det.id in ids2d
            assert abs(det.bbox.center.position.z - 1.5) < 1e-3 and det.bbox.size.z < 1e-3
            assert det.bbox.size.x > 0 and det.bbox.size.y > 0
        # "name #id 1.8 m": the distance from the camera to the box's centre
        names = {d.id: d.results[0].hypothesis.class_id for d in f["det"].detections}
        want = []
        for det in boxes:
            p = det.bbox.center.position
            want.append(f"{names[det.id]} #{det.id} {np.linalg.norm([p.x, p.y, p.z]):.1f} m")
        assert sorted(m.text for m in f["markers"].markers if m.text) == sorted(want)


def test_query_ranks_the_objects_of_the_latest_frame(ros, scene):
    _, ns, frames = scene
    res = ros.call(Query, f"{ns}/ovseg/query", Query.Request(phrases=["cat", "red mug"]))
    assert res.success, res.message
    dets = {d.id: d for d in frames[-1]["det"].detections}
    for answer in res.answers:
        matches = list(answer.objects)
        assert len(matches) == len(dets)
        assert [m.relevance for m in matches] == sorted((m.relevance for m in matches),
                                                        reverse=True)
        for m in matches:
            det = dets[m.track_id]
            assert det.results[0].hypothesis.class_id == m.class_name
            assert pixel_box(det) == (m.x, m.y, m.x + m.width, m.y + m.height)
            assert 0.0 <= m.relevance <= 1.0 and -1.0 <= m.cosine <= 1.0
