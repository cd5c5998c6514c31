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
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from ovseg_ros.core.settings import from_values, settings_of
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.cloud_messages import camera_info_msg
from ovseg_ros.frame.types import default_distro
from ovseg_ros.geometry import SYNTHETIC_NOTE, synthetic_depth
from ovseg_ros.io import encode_rgb, iter_frames, samples_dir
from ovseg_ros.io.image_codec import encode_16uc1
from ovseg_ros.node import params
from ovseg_ros.node import qos as qos_profiles
from ovseg_ros.node.messages import image_msg
from ovseg_ros.node.runner import run_main
from ovseg_ros.settings.parameters import ReplayConfig


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
    """Publishes a source's frames as a camera would (and synthetic depth with `depth`)."""

    def __init__(self, node_name: str = "replay", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        settings = settings_of(ReplayConfig)
        node_params = params.declare_settings(self, settings, "Read at start-up.", read_only=True)
        self.config = v = from_values(ReplayConfig, node_params)  # ConfigError: start-up error
        self._frames = frames(v.source, v.loop, v.max_size)
        self._first = next(self._frames)  # fail at start-up, not in the timer, on a bad source
        qos = qos_profiles.reliable(5) if v.qos == "reliable" else qos_profiles.sensor_data(5)
        self.compressed = v.transport == "compressed"
        self.pub = (self.create_publisher(CompressedImage, "image/compressed", qos)
                    if self.compressed else self.create_publisher(Image, "image", qos))
        self.pub_depth = self.pub_info = None
        if v.depth:
            self.pub_depth = self.create_publisher(Image, "depth", qos)
            self.pub_info = self.create_publisher(CameraInfo, "camera_info", qos)
        self.published = 0
        self.timer = self.create_timer(1.0 / v.rate, self._tick)
        extra = f" with {SYNTHETIC_NOTE}" if v.depth else ""
        self.get_logger().info(f"publishing {v.source or samples_dir()} on "
                               f"{self.pub.topic_name} at {v.rate} Hz{extra}")

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
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.config.frame_id)
        if self.compressed:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            msg = CompressedImage(header=header, format="jpeg")
            msg.data = jpeg.tobytes()
        else:
            if self.config.encoding == "bgr8":
                # Same byte layout as rgb8 with the channels swapped.
                fields = replace(encode_rgb(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                                 encoding="bgr8")
            else:
                fields = encode_rgb(rgb)
            msg = image_msg(fields, header)
        self.pub.publish(msg)
        if self.pub_depth is not None:  # same header: exactly paired with the colour frame
            depth = synthetic_depth(rgb)
            self.pub_depth.publish(image_msg(encode_16uc1(depth.depth_mm), header))
            b = builder_for(default_distro())  # CDR bytes: the frame step's builder
            self.pub_info.publish(b.serialize(camera_info_msg(b, depth.intrinsics,
                                                              b.header_of(header))))
        self.published += 1


def main(args: list[str] | None = None) -> int:
    return run_main(ReplayNode, "replay", sys.argv if args is None else args, threads=1)


if __name__ == "__main__":
    sys.exit(main())
