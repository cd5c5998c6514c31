"""A small rosbag2 made from the shipped sample images, for the docs' example and the tests:

    python -m ovseg_ros.bag.sample sample_bag [--frames 12] [--size 320]

Deterministic (same arguments -> same bytes). Topics: /camera/image_raw (rgb8, or
/camera/image_raw/compressed as JPEG with `compressed`), /camera/depth/image_raw (16UC1, 5 ms
after the colour frame; SYNTHETIC depth, see geometry/synthetic.py) and /camera/camera_info,
and /rosout-like /chatter (std_msgs/String). Options for the tests: sqlite3 storage (version 8,
as Humble wrote: no message definitions), depth at half resolution every other frame, and a
topic of a type no typestore knows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from ovseg_ros.bag.sink import qos_of
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.cloud_messages import camera_info_msg
from ovseg_ros.frame.messages import image_msg
from ovseg_ros.frame.outputs import SENSOR_QOS
from ovseg_ros.frame.types import default_distro, definition
from ovseg_ros.geometry import SYNTHETIC_NOTE, synthetic_depth
from ovseg_ros.io import encode_16uc1, encode_rgb
from ovseg_ros.io.media import list_images, read_image, samples_dir

START_S = 1_700_000_000  # bag time and stamps of the first frame
PERIOD_NS = 100_000_000  # 10 Hz
UNKNOWN_TYPE = "acme_msgs/msg/Odometer"  # in no typestore: copied raw with its definition
UNKNOWN_DEF = "uint32 ticks\nstring note\n"


def sample_frames(count: int, size: int) -> list[np.ndarray]:
    """`count` RGB frames cycling through samples/, long side `size` (aspect kept)."""
    images = []
    for path in list_images(samples_dir()):
        rgb = read_image(path)
        scale = size / max(rgb.shape[:2])
        w, h = max(2, round(rgb.shape[1] * scale)), max(2, round(rgb.shape[0] * scale))
        images.append(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA))
    return [images[i % len(images)] for i in range(count)]


def write_sample_bag(path: Path, *, frames: int = 12, size: int = 320, depth: bool = True,
                     compressed: bool = False, storage: str = "mcap", half_depth: bool = False,
                     unknown: bool = False, distro: str | None = None) -> Path:
    distro = distro or default_distro()
    b = builder_for(distro)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9 if storage == "mcap" else 8, storage_plugin=plugin)
    writer.open()
    sensor = (qos_of(SENSOR_QOS),)

    def conn(topic: str, msgtype: str):
        found = definition(distro, msgtype)
        return writer.add_connection(topic, msgtype, msgdef=found[0], rihs01=found[1],
                                     offered_qos_profiles=sensor)

    image_topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    c_img = conn(image_topic, "sensor_msgs/msg/" + ("CompressedImage" if compressed
                                                    else "Image"))
    c_depth = conn("/camera/depth/image_raw", "sensor_msgs/msg/Image") if depth else None
    c_info = conn("/camera/camera_info", "sensor_msgs/msg/CameraInfo") if depth else None
    c_chat = conn("/chatter", "std_msgs/msg/String")
    c_odo = writer.add_connection("/odometer", UNKNOWN_TYPE, msgdef=UNKNOWN_DEF,
                                  rihs01=_unknown_hash()) if unknown else None
    writer.write(c_chat, START_S * 10**9 - 1,
                 b.serialize(b.make("std_msgs/msg/String", data=SYNTHETIC_NOTE)))
    for i, rgb in enumerate(sample_frames(frames, size)):
        t = START_S * 10**9 + i * PERIOD_NS
        header = b.header(*divmod(t, 10**9), "camera")
        if compressed:
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            msg = b.make("sensor_msgs/msg/CompressedImage", header=header,
                         format="rgb8; jpeg compressed bgr8", data=jpg.reshape(-1))
        else:
            msg = image_msg(b, encode_rgb(rgb), header)
        writer.write(c_img, t, b.serialize(msg))
        if c_depth is not None:
            src = rgb
            if half_depth and i % 2:
                src = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2),
                                 interpolation=cv2.INTER_AREA)
            d = synthetic_depth(src)
            writer.write(c_depth, t + 5_000_000,
                         b.serialize(image_msg(b, encode_16uc1(d.depth_mm), header)))
            writer.write(c_info, t + 5_000_000,
                         b.serialize(camera_info_msg(b, d.intrinsics, header)))
        if c_odo is not None:  # CDR: 4-byte encapsulation header, uint32, string
            note = b"wheel\x00"
            raw = (b"\x00\x01\x00\x00" + int(i).to_bytes(4, "little")
                   + len(note).to_bytes(4, "little") + note)
            writer.write(c_odo, t + 1, raw)
    writer.close()
    return path


def _unknown_hash() -> str:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(UNKNOWN_DEF, UNKNOWN_TYPE))
    return store.hash_rihs01(UNKNOWN_TYPE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ovseg_ros.bag.sample",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("output", type=Path, help="new rosbag2 folder")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=320, help="long side of the frames, pixels")
    ap.add_argument("--compressed", action="store_true", help="JPEG CompressedImage frames")
    ap.add_argument("--no-depth", action="store_true")
    args = ap.parse_args(argv)
    if args.output.exists():
        print(f"{args.output} exists", file=sys.stderr)
        return 2
    write_sample_bag(args.output, frames=args.frames, size=args.size,
                     depth=not args.no_depth, compressed=args.compressed)
    print(f"wrote {args.output}: {args.frames} frames of samples/ with {SYNTHETIC_NOTE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
