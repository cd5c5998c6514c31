"""`replay` node: publishes images, a folder of images or a video as a camera topic.

Default source: the sample photos shipped in the package's samples/ folder. Publishes
`image` (sensor_msgs/Image, rgb8 or bgr8) or, with transport=compressed, `image/compressed`
(sensor_msgs/CompressedImage, JPEG), at `rate` Hz, looping by default. Both names are
relative, so remap them to the segmentation node's input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ovseg_ros.io import encode_rgb, iter_frames, samples_dir
from ovseg_ros.node import messages as m
from ovseg_ros.node import qos as Q
from ovseg_ros.node.runner import run_main

REPLAY_PARAMS: dict[str, tuple[Any, str]] = {
    "source": ("", "Image file, folder of images or video; empty = the shipped samples."),
    "rate": (2.0, "Frames per second (> 0)."),
    "loop": (True, "Start again at the end of the source."),
    "transport": ("raw", "raw: sensor_msgs/Image on 'image'; compressed: JPEG "
                  "sensor_msgs/CompressedImage on 'image/compressed'."),
    "encoding": ("rgb8", "Encoding of raw images: rgb8 or bgr8."),
    "frame_id": ("camera", "frame_id written into every header."),
    "max_size": (0, "Downscale so the longest side is at most this many pixels; 0 = keep."),
    "qos": ("sensor_data", "sensor_data (best effort) or reliable."),
}


def frames(source: str, loop: bool, max_size: int) -> Iterator[np.ndarray]:
    """RGB frames of `source`, repeated forever when `loop` (raises MediaError on bad input)."""
    path = Path(source).expanduser() if source else samples_dir()
    while True:
        count = 0
        for frame in iter_frames(path):
            rgb = frame.rgb
            h, w = rgb.shape[:2]
            if max_size and max(h, w) > max_size:
                s = max_size / max(h, w)
                size = (max(1, round(w * s)), max(1, round(h * s)))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            count += 1
            yield rgb
        if not loop or count == 0:
            return


class ReplayNode(Node):
    def __init__(self, node_name: str = "replay", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for name, (default, text) in REPLAY_PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(
                description=text + " Read at start-up.", read_only=True))
        v = {name: self.get_parameter(name).value for name in REPLAY_PARAMS}
        if not v["rate"] > 0:
            raise ValueError(f"rate must be > 0, got {v['rate']}")
        if v["transport"] not in ("raw", "compressed"):
            raise ValueError(f"transport must be raw or compressed, got {v['transport']!r}")
        if v["encoding"] not in ("rgb8", "bgr8"):
            raise ValueError(f"encoding must be rgb8 or bgr8, got {v['encoding']!r}")
        self.values = v
        self._frames = frames(v["source"], v["loop"], v["max_size"])
        self._first = next(self._frames)  # fail at start-up, not in the timer, on a bad source
        qos = Q.reliable(5) if v["qos"] == "reliable" else Q.sensor_data(5)
        self.compressed = v["transport"] == "compressed"
        self.pub = (self.create_publisher(CompressedImage, "image/compressed", qos)
                    if self.compressed else self.create_publisher(Image, "image", qos))
        self.published = 0
        self.timer = self.create_timer(1.0 / v["rate"], self._tick)
        self.get_logger().info(f"publishing {v['source'] or samples_dir()} on "
                               f"{self.pub.topic_name} at {v['rate']} Hz")

    def _next(self) -> np.ndarray | None:
        if self._first is not None:
            rgb, self._first = self._first, None
            return rgb
        return next(self._frames, None)

    def _tick(self) -> None:
        rgb = self._next()
        if rgb is None:
            self.get_logger().info(f"end of source after {self.published} frames")
            self.timer.cancel()
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.values["frame_id"])
        if self.compressed:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            msg = CompressedImage(header=header, format="jpeg")
            msg.data = jpeg.tobytes()
        else:
            if self.values["encoding"] == "bgr8":
                # Same byte layout as rgb8 with the channels swapped.
                fields = replace(encode_rgb(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                                 encoding="bgr8")
            else:
                fields = encode_rgb(rgb)
            msg = m.image_msg(fields, header)
        self.pub.publish(msg)
        self.published += 1


def main(args: list[str] | None = None) -> int:
    return run_main(ReplayNode, "replay", sys.argv if args is None else args, threads=1)


if __name__ == "__main__":
    sys.exit(main())
