"""Making and serializing messages of one distro's typestore, without ROS.

rosbags' message classes want every field; `MessageBuilder.make` fills the ones not given with
the ROS defaults (0, "", empty sequences, zeroed fixed arrays, default sub-messages), so a
builder names only what it sets and works for every distro's version of a type. The CDR bytes
of `serialize` are what the node publishes (rclpy publishes bytes as they are) and what
`ovseg bag` writes: one encoding for both, padding zeroed, identical for identical messages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from ovseg_ros.frame.types import typestore

# rosbags' numpy dtypes of the primitive types (sequences and fixed arrays of them are arrays).
_DTYPES = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8,
           "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
           "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
           "float32": np.float32, "float64": np.float64}
_NAME, _BASE, _ARRAY, _SEQUENCE = 2, 1, 3, 4  # rosbags' Nodetype values


class MessageBuilder:
    """Message construction and CDR serialization for one distro (see `builder_for`)."""

    def __init__(self, distro: str) -> None:
        self.distro = distro
        self.store = typestore(distro)
        self._defaults: dict[str, dict[str, Callable[[], Any]]] = {}

    def make(self, msgtype: str, **fields: Any) -> Any:
        """A message of `msgtype` ('sensor_msgs/msg/Image'); fields not given get defaults."""
        defaults = self._defaults.get(msgtype)
        if defaults is None:
            defaults = self._defaults[msgtype] = self._default_factories(msgtype)
        values = {name: fields[name] if name in fields else make() for name, make in
                  defaults.items()}
        return self.store.types[msgtype](**values)

    def serialize(self, msg: Any) -> bytes:
        """CDR bytes (with the encapsulation header) of a message made here."""
        return bytes(self.store.serialize_cdr(msg, msg.__msgtype__))

    def deserialize(self, raw: bytes | memoryview, msgtype: str) -> Any:
        return self.store.deserialize_cdr(raw, msgtype)

    def header(self, sec: int, nanosec: int, frame_id: str) -> Any:
        return self.make("std_msgs/msg/Header", frame_id=frame_id, stamp=self.make(
            "builtin_interfaces/msg/Time", sec=int(sec), nanosec=int(nanosec)))

    def header_of(self, header: Any) -> Any:
        """A copy of any Header (rclpy's, rosbags', ours): stamp and frame_id."""
        return self.header(header.stamp.sec, header.stamp.nanosec, header.frame_id)

    def _default_factories(self, msgtype: str) -> dict[str, Callable[[], Any]]:
        _, fields = self.store.fielddefs[msgtype]
        return {name: self._factory(desc) for name, desc in fields}

    def _factory(self, desc: tuple) -> Callable[[], Any]:
        kind, rest = desc
        kind = int(kind)
        if kind == _NAME:
            return lambda: self.make(rest)
        if kind == _BASE:
            base = rest[0]
            if base == "string" or base == "wstring":
                return str
            if base == "bool":
                return bool
            return float if base.startswith("float") else int
        (inner, count) = rest
        inner_kind, inner_rest = int(inner[0]), inner[1]
        if inner_kind == _BASE and inner_rest[0] not in ("string", "wstring"):
            dtype = _DTYPES[inner_rest[0]]
            size = count if kind == _ARRAY else 0
            return lambda: np.zeros(size, dtype)
        element = self._factory(inner)
        if kind == _ARRAY:
            return lambda: [element() for _ in range(count)]
        return list


@cache
def builder_for(distro: str) -> MessageBuilder:
    """The one builder of a distro (its defaults are cached)."""
    return MessageBuilder(distro)
