"""One camera's registered depth: its depth and camera_info inputs, the stamp pairing with the
colour frames, and the semantic cloud of a segmented frame (use_depth).

Subscription callbacks only store messages (`on_depth`, `on_info`) and open a pairing request
when a colour frame arrives (`open`); the worker closes it after inference (`cloud`), decodes
the paired depth there and builds the cloud. Nothing queues: the pairing keeps the last 4
depth images and camera_infos. Messages of any implementation in (rclpy's live, rosbags'
offline), ROS-free geometry inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.frame.log import Throttle
from ovseg_ros.frame.messages import stamp_seconds
from ovseg_ros.geometry import (
    CameraInfoError,
    ClassPoint,
    DepthDecodeError,
    DepthPairing,
    Miss,
    PairRequest,
    PinholeIntrinsics,
    SemanticCloud,
    build_cloud,
    class_points,
    decode_depth,
)


class DepthInput:
    """Depth + camera_info of one camera, paired with its colour frames by stamp."""

    def __init__(self, depth_topic: str, info_topic: str, slop_s: float, stride: int,
                 max_pixels: Callable[[], int], log: Any, throttle: Throttle) -> None:
        self.depth_topic, self.info_topic = depth_topic, info_topic
        self.pairing = DepthPairing(slop_s)
        self.stride = stride
        self.max_pixels = max_pixels  # the node's current max_image_pixels
        self.log, self.throttle = log, throttle
        self.depth_refused = self.info_refused = 0
        self.last_problem = ""  # why the newest frame got no cloud ("" when it got one)

    # ---- input (executor threads live, the bag reader offline) ------------------------------

    def on_depth(self, msg: Any) -> None:
        self.pairing.add_depth(stamp_seconds(msg.header.stamp), msg.header.frame_id, msg)

    def on_info(self, msg: Any) -> None:
        roi = msg.roi
        try:
            intr = PinholeIntrinsics.from_camera_info(
                msg.k, msg.width, msg.height, msg.binning_x, msg.binning_y,
                (roi.x_offset, roi.y_offset, roi.width, roi.height))
        except CameraInfoError as exc:
            self.info_refused += 1
            self.pairing.refuse_info(str(exc))
            self._warn("info", f"camera_info on {self.info_topic} refused: {exc}")
            return
        self.pairing.add_info(stamp_seconds(msg.header.stamp), msg.header.frame_id, intr)

    def open(self, colour: Any) -> PairRequest:
        """A colour frame arrived: start looking for its depth (stamp and frame_id)."""
        return self.pairing.open(stamp_seconds(colour.header.stamp), colour.header.frame_id)

    # ---- the frame step -----------------------------------------------------------------------

    def cloud(self, request: PairRequest, result: SegmentationResult
              ) -> tuple[SemanticCloud | None, dict[int, ClassPoint] | None]:
        """The frame's cloud and per-class 3D medians, or (None, None) with the reason kept
        in `last_problem` (counted, warned once per kind per 5 s); 2D outputs go on."""
        got = self.pairing.close(request)
        if isinstance(got, Miss):
            self.last_problem = got.message
            self._warn(f"miss:{got.reason.value}", f"no point cloud: {got.message}")
            return None, None
        d = got.depth
        try:
            depth = decode_depth(d.encoding, d.height, d.width, d.step, d.is_bigendian, d.data,
                                 self.max_pixels())
            h, w = result.labels.shape
            intr = got.info.for_image(d.width, d.height, colour_size=(w, h))
            cloud = build_cloud(depth, result.labels, result.confidence, intr, self.stride)
        except (DepthDecodeError, CameraInfoError) as exc:
            self.depth_refused += 1
            self.last_problem = f"depth refused: {exc}"
            key = "".join(c for c in str(exc) if not c.isdigit())[:60]
            self._warn(f"depth:{key}", f"depth on {self.depth_topic} refused: {exc}")
            return None, None
        self.last_problem = ""
        return cloud, class_points(cloud)

    def values(self) -> list[tuple[str, str]]:
        """Key/values for this camera's /diagnostics status."""
        return (self.pairing.stats().values()
                + [("depth_topic", self.depth_topic), ("camera_info_topic", self.info_topic),
                   ("depth_frames_refused", str(self.depth_refused)),
                   ("camera_info_refused", str(self.info_refused))])

    def _warn(self, key: str, text: str) -> None:
        if self.throttle.ready(f"depth:{self.depth_topic}:{key}"):
            self.log.warning(text)
