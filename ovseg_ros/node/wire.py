"""The node publishes the frame step's CDR bytes (built from the rosbags typestore of the
environment's distro) on publishers of the installed rclpy types. A type whose layout differs
between the two (a distro mismatch) would put garbage on the wire; `check_wire` finds it at
configure, once per type, by reading a message of each back with rclpy."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache

from rclpy.serialization import deserialize_message, serialize_message

from ovseg_ros.frame.builder import MessageBuilder


class WireError(RuntimeError):
    """Our message layout and the installed ROS one differ."""


def type_name(cls: type) -> str:
    """'sensor_msgs/msg/Image' for the rclpy class sensor_msgs.msg.Image."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


@cache
def message_class(msgtype: str) -> type | None:
    """The installed rclpy class of 'pkg/msg/Name', or None when that package is not installed
    (vision_msgs, semantic_inference_msgs are optional)."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        return None


def check_wire(builder: MessageBuilder, msg_types: Iterable[type]) -> None:
    """Raise WireError unless every type's bytes from `builder` read back with rclpy into a
    message of the same serialized size."""
    for cls in set(msg_types):
        name = type_name(cls)
        if name not in builder.store.types:
            raise WireError(f"{name}: not in the {builder.distro} typestore")
        raw = builder.serialize(builder.make(name))
        try:
            size = len(serialize_message(deserialize_message(raw, cls)))
        except Exception as exc:  # the C deserializer's errors vary by distro
            size, why = -1, str(exc)
        else:
            why = f"{size} bytes back for {len(raw)}"
        if size != len(raw):
            raise WireError(
                f"{name} of this ROS install does not match the {builder.distro} message "
                f"definitions ovseg_ros writes ({why}): set ROS_DISTRO (or OVSEG_ENV_DISTRO) "
                "to the distro that is sourced")
