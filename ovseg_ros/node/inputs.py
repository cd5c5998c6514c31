"""The active node's input subscriptions (images, depth, camera info), with a second chance
for `qos: auto`.

`qos: auto` matches the publishers that exist at activation. With none yet it subscribes best
effort, which accepts any publisher. But a reliable publisher that appears later then feeds a
best-effort connection, and a large image (640x480 rgb8 is 900 KB, sent in fragments) arrives
only when every fragment does: with Fast DDS between two processes nearly all such frames
were lost best effort and none reliably (doc/node.md). So while an input has no publisher, a
timer looks every `period_s`, and when publishers appear it subscribes once more with the
profile matched to them.

The switch loses nothing: the first subscription keeps delivering until the matched one has
delivered a message (whose duplicate, the same header, is passed on once), and is only then
destroyed, by the timer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.callback_groups import CallbackGroup, MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ovseg_ros.frame.step import Incoming
from ovseg_ros.node import qos as qos_profiles
from ovseg_ros.node.camera import Camera
from ovseg_ros.node.worker import FrameWorker


def _ignore(msg: Any) -> None:
    """A closed input's callback."""


def _identity(msg: Any) -> tuple:
    h = msg.header
    return h.stamp.sec, h.stamp.nanosec, h.frame_id


@dataclass
class _Input:
    msg_type: Any
    topic: str
    callback: Callable[[Any], None]
    group: CallbackGroup
    on_incompatible: Callable[[Any], None] | None
    on_change: Callable[[str], None] | None
    subscription: Any = None
    waiting: bool = False  # subscribed before any publisher existed (qos: auto)
    previous: Any = None  # the first subscription, until the matched one delivers
    switched: bool = False  # the matched one has delivered: the first one is ignored
    last: tuple | None = None  # the identity of the last message passed on

    # Both callbacks run in the input's one mutually exclusive group: never at once.
    def first(self, msg: Any) -> None:
        if not self.switched:
            self.last = _identity(msg)
            self.callback(msg)

    def matched(self, msg: Any) -> None:
        if not self.switched:
            self.switched = True
            if _identity(msg) == self.last:  # the first one passed it on already
                return
        self.callback(msg)

    def incompatible(self, info: Any) -> None:
        if self.on_incompatible is not None:
            self.on_incompatible(info)

    def release(self) -> None:
        """After its subscriptions are destroyed: drop what the callbacks reach (the camera,
        the frame worker, through them the model). rclpy's executor may still hold a
        destroyed subscription for a while (the wait set it built before), and what it
        reaches would outlive cleanup's collection."""
        self.callback, self.on_change, self.on_incompatible = _ignore, None, None


class InputSubscriptions:
    """Subscribes with the `qos` setting's profile (`qos.input_qos`); under `auto`, inputs that
    had no publisher at subscription are matched again once publishers appear. Lives from
    activate to deactivate; `close` ends every subscription and the timer."""

    def __init__(self, node: Node, mode: str, depth: int, period_s: float = 1.0) -> None:
        self.node, self.mode, self.depth = node, mode, depth
        self.inputs: list[_Input] = []
        self._lock = threading.Lock()  # the timer's (re-)subscriptions against close()
        self.timer = (node.create_timer(period_s, self._tick,
                                        callback_group=MutuallyExclusiveCallbackGroup())
                      if mode == "auto" else None)

    def add_camera(self, cam: Camera, compressed: bool, worker: FrameWorker) -> None:
        """Subscribe one camera: its image (or image/compressed) into the worker's slot for
        it, and with depth its depth and camera_info; one camera's callbacks run one at a
        time. Subscription callbacks only hand messages over: no decoding here."""
        depth = cam.depth

        def on_image(msg: Image | CompressedImage) -> None:
            cam.health.frame_received()
            pair = depth.open(msg) if depth is not None else None
            worker.submit(Incoming(msg, time.monotonic(), pair), key=cam.name)

        def on_change(desc: str) -> None:
            cam.qos_desc = desc

        group = MutuallyExclusiveCallbackGroup()
        cam.qos_desc = self.add(CompressedImage if compressed else Image, cam.input_topic,
                                on_image, group, lambda info: self._incompatible(info, cam),
                                on_change)
        if depth is not None:
            for topic, msg_type, callback in ((depth.depth_topic, Image, depth.on_depth),
                                              (depth.info_topic, CameraInfo, depth.on_info)):
                self.add(msg_type, topic, callback, group)

    def _incompatible(self, info: Any, cam: Camera) -> None:
        policy = qos_policy_name_from_kind(info.last_policy_kind)
        text = f"a publisher on {cam.input_topic} offers incompatible QoS ({policy})"
        cam.health.qos_event = text
        self.node.get_logger().warning(f"{text}; ours is {cam.qos_desc}; see the qos parameter")

    def add(self, msg_type: Any, topic: str, callback: Callable[[Any], None],
            group: CallbackGroup, on_incompatible: Callable[[Any], None] | None = None,
            on_change: Callable[[str], None] | None = None) -> str:
        """Subscribe `callback` to `topic`; returns the QoS description. `on_incompatible(info)`
        is called on an incompatible publisher's QoS event, `on_change(desc)` if a matched
        subscription is added later."""
        qos, desc = qos_profiles.input_qos(self.node, self.mode, topic, self.depth)
        entry = _Input(msg_type, topic, callback, group, on_incompatible, on_change,
                       waiting=self.mode == "auto" and qos_profiles.NO_PUBLISHER in desc)
        entry.subscription = self._subscribe(entry, qos, entry.first)
        self.inputs.append(entry)
        return desc

    def _subscribe(self, entry: _Input, qos: QoSProfile, callback: Callable[[Any], None]
                   ) -> Any:
        events = (SubscriptionEventCallbacks(incompatible_qos=entry.incompatible)
                  if entry.on_incompatible is not None else None)
        return self.node.create_subscription(entry.msg_type, entry.topic, callback, qos,
                                             callback_group=entry.group,
                                             event_callbacks=events)

    def _tick(self) -> None:
        with self._lock:
            for entry in self.inputs:
                if entry.previous is not None and entry.switched:
                    self.node.destroy_subscription(entry.previous)
                    entry.previous = None
                elif entry.waiting and self.node.get_publishers_info_by_topic(entry.topic):
                    self._rematch(entry)
            if self.timer is not None and not any(e.waiting or e.previous is not None
                                                  for e in self.inputs):
                self.timer.cancel()  # nothing left to match or to end

    def _rematch(self, entry: _Input) -> None:
        entry.waiting = False
        qos, how = qos_profiles.matched(self.node, entry.topic, self.depth, wait_s=0.0)
        if (qos.reliability == ReliabilityPolicy.BEST_EFFORT
                and qos.durability == DurabilityPolicy.VOLATILE):
            return  # what it has already
        entry.previous = entry.subscription
        entry.subscription = self._subscribe(entry, qos, entry.matched)
        desc = f"{qos_profiles.describe(qos)} ({how}, after activation)"
        self.node.get_logger().info(f"input {entry.topic}: publishers appeared; subscribed "
                                    f"{desc}")
        if entry.on_change is not None:
            entry.on_change(desc)

    def close(self) -> None:
        with self._lock:
            if self.timer is not None:
                self.node.destroy_timer(self.timer)
                self.timer = None
            for entry in self.inputs:
                for sub in (entry.subscription, entry.previous):
                    if sub is not None:
                        self.node.destroy_subscription(sub)
                entry.release()
            self.inputs = []
