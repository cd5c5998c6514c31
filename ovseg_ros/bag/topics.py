"""Which input topics `ovseg bag` reads and the output topics it writes.

Output names are the live node's: under `--ns` (default /ovseg) as `~/` is under the node's
name; with several image topics one camera each, named after its image topic, as with the
node's `cameras` parameter: /ovseg/<camera>/labels. Types and QoS are the node's publishers'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ovseg_ros.bag import BagError
from ovseg_ros.bag.sink import OutputBag, Topic
from ovseg_ros.bag.source import IMAGE_TYPES, InputBag
from ovseg_ros.frame.depth import DepthInput
from ovseg_ros.frame.outputs import VOCABULARY_TABLE, OutputSettings, frame_outputs

# Trailing parts of an image topic that do not name the camera.
_IMAGE_WORDS = {"image", "image_raw", "image_rect", "image_color", "image_rect_color",
                "compressed", "color", "rgb"}


@dataclass
class BagCamera:
    name: str  # "" for the single-camera case (outputs directly under --ns)
    image_topic: str
    msgtype: str  # sensor_msgs/msg/Image or .../CompressedImage
    depth_topic: str = ""
    info_topic: str = ""
    depth: DepthInput | None = None


def camera_name(topic: str) -> str:
    """'/front/color/image_raw' -> 'front'; the topic itself (slashes kept) when nothing is
    left."""
    parts = [p for p in topic.strip("/").split("/") if p]
    while len(parts) > 1 and parts[-1] in _IMAGE_WORDS:
        parts.pop()
    return "/".join(parts)


def default_image_topics(images: dict[str, str], depth_topics=()) -> list[str]:
    """The image topics to segment when none is named: every Image/CompressedImage topic but
    the depth ones (depth images are Images too)."""
    return sorted(t for t in images if t not in depth_topics and "depth" not in t.lower())


def cameras_for(bag: InputBag, s: Any, log: Any, throttle: Any) -> list[BagCamera]:
    """The cameras to process, checked against the bag (BagError with what it has)."""
    images = bag.topics(IMAGE_TYPES)
    wanted = list(s.image_topics)
    if not wanted:
        candidates = default_image_topics(images, s.depth_topics)
        if len(candidates) != 1:
            listing = ", ".join(candidates) or "none"
            raise BagError(f"{bag.path}: pick the image topic(s) with --image-topic; its image "
                           f"topics: {listing}")
        wanted = candidates
    missing = [t for t in wanted if t not in images]
    if missing:
        listing = ", ".join(f"{t} ({images[t].split('/')[-1]})" for t in sorted(images))
        raise BagError(f"{bag.path}: no image topic {', '.join(missing)}; its image topics: "
                       f"{listing or 'none'}")
    depth, info = list(s.depth_topics), list(s.info_topics)
    if len(depth) != len(info) or (depth and len(depth) != len(wanted)):
        raise BagError("give one --depth-topic and one --camera-info-topic per --image-topic")
    topics = bag.topics()
    for t in depth + info:
        if t not in topics:
            raise BagError(f"{bag.path}: no topic {t}")
    names = [camera_name(t) for t in wanted] if len(wanted) > 1 else [""]
    if len(set(names)) != len(names):
        names = [t.strip("/") for t in wanted]
    cams = []
    for i, (name, topic) in enumerate(zip(names, wanted, strict=True)):
        cam = BagCamera(name, topic, images[topic])
        if depth:
            cam.depth_topic, cam.info_topic = depth[i], info[i]
            cam.depth = DepthInput(depth[i], info[i], s.node.depth_slop_s, s.node.points_stride,
                                   lambda: s.node.max_image_pixels, log, throttle)
        cams.append(cam)
    return cams


def output_topics(out: OutputBag, cams: list[BagCamera], s: Any) -> dict[tuple[str, str], Topic]:
    """{(camera name, output): Topic} for what will be written (the output table's rows each
    camera has, the optional ones when asked), and ("", "label_map"), ("", "label_info")
    (transient local, as the node latches them)."""
    ns = "/" + s.ns.strip("/") if s.ns.strip("/") else ""
    topics: dict[tuple[str, str], Topic] = {}
    for cam in cams:
        base = f"{ns}/{cam.name}" if cam.name else ns
        for row in frame_outputs(OutputSettings(s.node, s.objects), cam.depth is not None,
                                 s.outputs):
            topics[(cam.name, row.name)] = out.output_topic(f"{base}/{row.name}", row.msgtype,
                                                            row.qos)
    for row in VOCABULARY_TABLE:
        topics[("", row.name)] = out.output_topic(f"{ns}/{row.name}", row.msgtype, row.qos)
    return topics
