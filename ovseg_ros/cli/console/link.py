"""The console's ROS side: one rclpy node of its own (own context, a spinner thread) that
finds the segmentation node, subscribes to what the pages watch and calls the node's services.

- Discovery, every second: the node's cameras are its publishers `<node>/labels` (camera "")
  and `<node>/<camera>/labels`.
- The vocabulary: `<node>/label_map` (latched), always.
- Per watched camera: `labels` and `segmentation`, `overlay` while a page shows it (the node
  draws its overlay only while someone subscribes), and `detections` while the node publishes
  them (objects on; discovery tells). Reliable keep-last-1 subscriptions:
  the node's reliable publishers keep their own history, so a slow console never holds them
  up, and large images are not lost in fragments as best effort loses them.
- Subscriptions change on the spinner thread (a timer compares them with the pages' demand),
  never while the executor builds its wait set from another thread.
- Services (`call`): one client each, made at start; awaited from asyncio. A service the node
  does not offer is answered with why: at once, but for the first call of each, which gives
  discovery up to DISCOVER_SERVICE_S.

Everything the node sends is handed to `events(kind, value)` on the spinner thread.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ovseg_ros.cli.console.frames import CameraFrames
from ovseg_ros.cli.node_session import node_path
from ovseg_ros.io.image_codec import ImageDecodeError, image_rows

DISCOVERY_S = 1.0
RECONCILE_S = 0.05
DISCOVER_SERVICE_S = 2.0  # how long a service the console has not used yet may take to appear
DETECTIONS_TYPE = "vision_msgs/msg/Detection2DArray"


def split_name(path: str) -> tuple[str, str]:
    """'/robot1/ovseg' -> ('/robot1', 'ovseg')."""
    ns, _, name = path.rpartition("/")
    return ns or "/", name


def cameras_of(node: str, topics: list[tuple[str, list[str]]], output: str = "labels",
               kind: str = "sensor_msgs/msg/Image") -> list[str]:
    """The node's cameras from its publishers' (topic, types): "" for <node>/labels, "front"
    for <node>/front/labels; sorted, the default camera first. With `output` and `kind`: the
    cameras that publish that output (`detections`: those with objects on)."""
    out = set()
    for topic, types in topics:
        if kind not in types or not topic.endswith("/" + output):
            continue
        if topic == f"{node}/{output}":
            out.add("")
        elif topic.startswith(node + "/"):
            out.add(topic[len(node) + 1:-len(output) - 1])
    return sorted(out)


def boxes_of(msg: Any) -> list[dict[str, Any]]:
    """A Detection2DArray as the page's boxes: the box's corner (x, y) and size (w, h) in
    pixels, the class name, the track id (the detection's `id`, a string) and the score. A
    detection with a box that is not finite numbers is left out."""
    boxes = []
    for det in msg.detections:
        c, w, h = det.bbox.center.position, float(det.bbox.size_x), float(det.bbox.size_y)
        x, y = float(c.x) - w / 2, float(c.y) - h / 2
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            continue
        hyp = det.results[0].hypothesis if len(det.results) else None
        score = float(hyp.score) if hyp is not None else 0.0
        boxes.append({"x": x, "y": y, "w": w, "h": h,
                      "name": hyp.class_id if hyp is not None else "", "track": det.id,
                      "score": score if math.isfinite(score) else 0.0})
    return boxes


def label_array(msg: Any) -> np.ndarray:
    """A label image (mono8, mono16, 16UC1) as (H, W) uint8/uint16."""
    if msg.encoding == "mono8":
        return np.ascontiguousarray(image_rows("mono8", 1, msg.height, msg.width, msg.step,
                                               msg.data))
    if msg.encoding in ("mono16", "16UC1"):
        rows = image_rows(msg.encoding, 2, msg.height, msg.width, msg.step, msg.data)
        return rows.view(">u2" if msg.is_bigendian else "<u2").astype(np.uint16)
    raise ImageDecodeError(f"labels: unexpected encoding {msg.encoding!r}")


def rgb_array(msg: Any) -> np.ndarray:
    if msg.encoding != "rgb8":
        raise ImageDecodeError(f"overlay: unexpected encoding {msg.encoding!r}")
    rows = image_rows("rgb8", 3, msg.height, msg.width, msg.step, msg.data)
    return np.ascontiguousarray(rows).reshape(msg.height, msg.width, 3)


def float_array(msg: Any) -> np.ndarray:
    if msg.encoding != "32FC1":
        raise ImageDecodeError(f"relevance: unexpected encoding {msg.encoding!r}")
    rows = image_rows("32FC1", 4, msg.height, msg.width, msg.step, msg.data)
    return rows.view(">f4" if msg.is_bigendian else "<f4").astype(np.float32)


def summary_dict(msg: Any) -> dict[str, Any]:
    """A ~/segmentation message as the page's legend and status read it."""
    return {
        "vocabulary_version": int(msg.vocabulary_version),
        "classes": [{"id": int(c.class_id), "name": c.class_name,
                     "fraction": float(c.pixel_fraction),
                     "confidence": float(c.mean_confidence), "presence": float(c.presence)}
                    for c in msg.classes],
        "keyframe": bool(msg.keyframe), "inference_ms": float(msg.inference_ms),
        "latency_ms": float(msg.latency_ms), "frames_dropped": int(msg.frames_dropped),
    }


def vocabulary_dict(msg: Any) -> dict[str, Any]:
    """A ~/label_map message: ids, names and the node's own colours."""
    return {"version": int(msg.version), "background": bool(msg.background),
            "labels": [{"id": int(e.class_id), "name": e.class_name,
                        "rgb": [int(e.r), int(e.g), int(e.b)]} for e in msg.labels]}


def stamp_of(msg: Any) -> tuple[int, int]:
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


def detections_type() -> Any:
    """vision_msgs' Detection2DArray, or None where vision_msgs is not installed (no boxes)."""
    try:
        from vision_msgs.msg import Detection2DArray
    except ImportError:
        return None
    return Detection2DArray


class NodeLink:
    """link = NodeLink('/ovseg', events); link.start(); link.watch({'': True});
    await link.call('query', Query.Request(...), 30.0); link.close()"""

    def __init__(self, node: str, events: Callable[[str, Any], None]) -> None:
        self.node_name = node_path(node)
        self.events = events
        self.cameras: list[str] = []
        self.found = False
        self.detecting: set[str] = set()  # cameras whose detections the node publishes
        self._demand: dict[str, bool] = {}  # camera -> overlay wanted
        self._demand_lock = threading.Lock()
        self._subs: dict[tuple[str, str], Any] = {}  # (camera, output) -> subscription
        self._frames: dict[str, CameraFrames] = {}
        self._clients: dict[str, Any] = {}  # service (relative name) -> client, made at start
        self._used: set[str] = set()
        self.context = self.node = self.executor = self.spinner = None

    # ---- life -------------------------------------------------------------------------------

    def start(self) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions

        from ovseg_ros.msg import LabelMap
        from ovseg_ros.node import qos
        from ovseg_ros.node.runner import SpinThread

        self.context = Context()
        rclpy.init(args=[], context=self.context,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(f"ovseg_console_{os.getpid()}", context=self.context,
                         start_parameter_services=False, enable_rosout=False)
        self.node.create_subscription(LabelMap, f"{self.node_name}/label_map",
                                      self._on_label_map, qos.latched())
        from ovseg_ros.srv import GetPrompts, PixelClasses, Query, SetPrompts

        # Made before the spinner starts, and kept: one per call would churn discovery.
        for kind, relative in ((SetPrompts, "set_prompts"), (GetPrompts, "get_prompts"),
                               (Query, "query"), (PixelClasses, "pixel_classes")):
            self._clients[relative] = self.node.create_client(kind, f"{self.node_name}/"
                                                                     f"{relative}")
        self.node.create_timer(DISCOVERY_S, self._discover)
        self.node.create_timer(RECONCILE_S, self._reconcile)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = SpinThread(self.executor, name="ovseg-console-ros")
        self.executor.create_task(self._discover)

    def close(self) -> None:
        from ovseg_ros.node.compat import try_shutdown

        if self.spinner is not None:
            self.spinner.stop(timeout=2.0)
            self.spinner = None
        if self.node is not None:
            self.node.destroy_node()
            self.node = None
        if self.context is not None:
            try_shutdown(self.context)
            self.context = None

    # ---- what the pages watch ---------------------------------------------------------------

    def watch(self, demand: dict[str, bool]) -> None:
        """The cameras the pages watch, each with whether a page shows its overlay; applied
        on the spinner thread within RECONCILE_S."""
        with self._demand_lock:
            self._demand = dict(demand)

    def _reconcile(self) -> None:
        from sensor_msgs.msg import Image

        from ovseg_ros.msg import Segmentation
        from ovseg_ros.node import qos

        with self._demand_lock:
            demand = dict(self._demand)
        detections = detections_type()
        want = {(c, o) for c, overlay in demand.items()
                for o in ("labels", "segmentation") + (("overlay",) if overlay else ())
                + (("detections",) if c in self.detecting and detections else ())}
        for key in [k for k in self._subs if k not in want]:
            self.node.destroy_subscription(self._subs.pop(key))
        kinds = {"segmentation": Segmentation, "detections": detections}
        for camera, output in sorted(want - set(self._subs)):
            topic = self.topic(camera, output)
            self._subs[(camera, output)] = self.node.create_subscription(
                kinds.get(output, Image), topic,
                lambda msg, c=camera, o=output: self._on_output(c, o, msg), qos.reliable(1))
        for camera, overlay in demand.items():
            frames = self._frames.setdefault(camera, CameraFrames(camera))
            frames.want_overlay = overlay
            # Frames wait for detections only from a publisher this subscription matched.
            sub = self._subs.get((camera, "detections"))
            frames.want_detections = sub is not None and sub.get_publisher_count() > 0
            frame = frames.expire()
            if frame is not None:
                self.events("frame", frame)

    def topic(self, camera: str, output: str) -> str:
        return "/".join(p for p in (self.node_name, camera, output) if p)

    # ---- callbacks (spinner thread) ---------------------------------------------------------

    def _discover(self) -> None:
        ns, name = split_name(self.node_name)
        found = (name, ns) in self.node.get_node_names_and_namespaces()
        topics = []
        if found:
            try:
                topics = self.node.get_publisher_names_and_types_by_node(name, ns)
            except Exception:  # gone since (rclpy's NodeNameNonExistentError, not exported)
                found = False
        cameras = cameras_of(self.node_name, topics) if found else []
        self.detecting = set(cameras_of(self.node_name, topics, "detections", DETECTIONS_TYPE))
        if found != self.found or cameras != self.cameras:
            self.found, self.cameras = found, cameras
            self.events("cameras", {"found": found, "cameras": cameras})

    def _on_label_map(self, msg: Any) -> None:
        self.events("vocabulary", vocabulary_dict(msg))

    def _on_output(self, camera: str, output: str, msg: Any) -> None:
        frames = self._frames.get(camera)
        if frames is None:
            return
        try:
            if output == "labels":
                value = label_array(msg)
            elif output == "overlay":
                value = rgb_array(msg)
            elif output == "detections":
                value = boxes_of(msg)
            else:
                value = summary_dict(msg)
        except ImageDecodeError as exc:
            self.events("problem", f"{self.topic(camera, output)}: {exc}")
            return
        frame = frames.add("summary" if output == "segmentation" else output, stamp_of(msg),
                           msg.header.frame_id, value)
        if frame is not None:
            self.events("frame", frame)

    # ---- services ---------------------------------------------------------------------------

    async def call(self, relative: str, request: Any, timeout: float) -> Any:
        """The node's answer to `request` on <node>/<relative>; LinkError when the node does
        not offer the service now or does not answer within `timeout` s."""
        name = f"{self.node_name}/{relative}"
        client = self._clients.get(relative)
        if client is None:
            raise LinkError(f"the console does not call {name}")
        if relative not in self._used:  # the first call soon after start: let it match
            self._used.add(relative)
            deadline = time.monotonic() + DISCOVER_SERVICE_S
            while not client.service_is_ready() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # a new client: matching takes a moment
        if not client.service_is_ready():
            raise LinkError(f"{name} is not offered: is the node {self.node_name} running (in "
                            f"ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')})?")
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def finished(f: Any) -> None:  # on the spinner thread
            def settle() -> None:
                if done.done():
                    return
                if f.exception() is not None:
                    done.set_exception(LinkError(f"{name} failed: {f.exception()}"))
                else:
                    done.set_result(f.result())
            loop.call_soon_threadsafe(settle)

        future = client.call_async(request)
        future.add_done_callback(finished)
        try:
            return await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            client.remove_pending_request(future)
            raise LinkError(f"{name} did not answer within {timeout:g} s") from None


class LinkError(RuntimeError):
    """The node could not be asked: not found, or no answer in time."""
