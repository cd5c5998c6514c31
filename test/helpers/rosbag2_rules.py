"""What each ROS 2 release's rosbag2 decodes from a bag's metadata, as rules on the YAML loaded
with PyYAML, written from rosbag2's sources on each branch (github.com/ros2/rosbag2):
rosbag2_storage/include/rosbag2_storage/yaml.hpp and bag_metadata.hpp (humble, iron, jazzy;
rolling as Kilted was branched from it has the same files as jazzy), the QoS conversions
(humble and iron: rosbag2_transport/src/rosbag2_transport/qos.cpp; jazzy:
rosbag2_storage/src/rosbag2_storage/qos.cpp) and the MCAP plugin
(rosbag2_storage_mcap/src/mcap_storage.cpp).

yaml-cpp's `as<T>()` as these rules take it: `std::string` needs a scalar (not null, not a
list or map); integers a scalar in T's range; `bool` true/false. A missing key throws.
Stricter than yaml-cpp where yaml-cpp would silently accept a different meaning.
"""

from __future__ import annotations

from typing import Any

import yaml

# The version each release writes; it decodes that one and older, field by field.
OWN_VERSION = {"humble": 5, "iron": 7, "jazzy": 9, "kilted": 9}
# rmw policy enums (rmw/types.h): integer values, and the names Jazzy's v9 text uses.
HISTORY = {0: "system_default", 1: "keep_last", 2: "keep_all", 3: "unknown"}
RELIABILITY = {0: "system_default", 1: "reliable", 2: "best_effort", 3: "unknown",
               4: "best_available"}
DURABILITY = {0: "system_default", 1: "transient_local", 2: "volatile", 3: "unknown",
              4: "best_available"}
LIVELINESS = {0: "system_default", 1: "automatic", 3: "manual_by_topic", 4: "unknown",
              5: "best_available"}
HUMBLE_MAX = {"history": 3, "reliability": 3, "durability": 3, "liveliness": 4}


class Rosbag2Rejects(AssertionError):
    """That release's rosbag2 fails to decode this (a yaml-cpp conversion error)."""


def _get(node: Any, key: str, where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise Rosbag2Rejects(f"{where}: no '{key}' (yaml-cpp InvalidNode)")
    return node[key]


def as_string(node: Any, key: str, where: str) -> str:
    value = _get(node, key, where)
    if value is None or isinstance(value, (list, dict)):
        raise Rosbag2Rejects(f"{where}.{key}: as<std::string> of {type(value).__name__}")
    return str(value)


def as_int(node: Any, key: str, where: str, low: int, high: int) -> int:
    value = _get(node, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Rosbag2Rejects(f"{where}.{key}: {value!r} is not an integer in [{low}, {high}]")
    return value


def as_uint64(node: Any, key: str, where: str) -> int:
    return as_int(node, key, where, 0, 2 ** 64 - 1)


def as_bool(node: Any, key: str, where: str) -> bool:
    value = _get(node, key, where)
    if not isinstance(value, bool):
        raise Rosbag2Rejects(f"{where}.{key}: {value!r} is not a bool")
    return value


def as_list(node: Any, key: str, where: str) -> list:
    value = _get(node, key, where)
    if not isinstance(value, list):
        raise Rosbag2Rejects(f"{where}.{key}: a {type(value).__name__}, not a sequence")
    return value


def _time(node: Any, key: str, where: str, field: str) -> None:
    as_uint64(_get(node, key, where), field, f"{where}.{key}")


def check_qos(profile: Any, where: str, distro: str) -> None:
    """One QoS profile: Humble/Iron's Rosbag2QoS decode (integer policies), or Jazzy's (an
    integer history selects integer policies, else named ones)."""
    if not isinstance(profile, dict):
        raise Rosbag2Rejects(f"{where}: a QoS profile must be a map")
    named = OWN_VERSION[distro] >= 9 and not isinstance(profile.get("history"), int)
    for key, names in (("history", HISTORY), ("reliability", RELIABILITY),
                       ("durability", DURABILITY), ("liveliness", LIVELINESS)):
        if named:
            if as_string(profile, key, where) not in names.values():
                raise Rosbag2Rejects(f"{where}.{key}: {profile[key]!r} is no policy name")
        else:
            high = HUMBLE_MAX[key] if OWN_VERSION[distro] < 9 else max(names)
            if as_int(profile, key, where, 0, high) not in names:
                raise Rosbag2Rejects(f"{where}.{key}: {profile[key]} is no policy value")
    as_int(profile, "depth", where, -(2 ** 31), 2 ** 31 - 1)
    for key in ("deadline", "lifespan", "liveliness_lease_duration"):
        time = _get(profile, key, where)
        as_uint64(time, "sec", f"{where}.{key}")
        as_uint64(time, "nsec", f"{where}.{key}")
    as_bool(profile, "avoid_ros_namespace_conventions", where)


def check_qos_text(text: str, where: str, distro: str) -> None:
    """A serialized profile list (metadata before version 9, and every MCAP channel's
    `offered_qos_profiles`): empty, or YAML text of a sequence of profiles."""
    if text == "":
        return
    profiles = yaml.safe_load(text)
    if not isinstance(profiles, list):
        raise Rosbag2Rejects(f"{where}: the QoS text is not a sequence")
    for k, profile in enumerate(profiles):
        check_qos(profile, f"{where}[{k}]", distro)


def check_bag_information(info: Any, distro: str, where: str = "info") -> int:
    """The mapping under rosbag2_bagfile_information (also the MCAP's `rosbag2` record) as the
    distro's `convert<BagMetadata>::decode` reads it; returns the version."""
    version = as_int(info, "version", where, -(2 ** 31), 2 ** 31 - 1)
    if not 1 <= version <= OWN_VERSION[distro]:
        raise Rosbag2Rejects(f"{where}.version {version}: {distro} writes {OWN_VERSION[distro]}"
                             " and decodes newer fields by its own rules")
    as_string(info, "storage_identifier", where)
    _time(info, "duration", where, "nanoseconds")
    _time(info, "starting_time", where, "nanoseconds_since_epoch")
    as_uint64(info, "message_count", where)
    for k, topic in enumerate(as_list(info, "topics_with_message_count", where)):
        at = f"{where}.topics_with_message_count[{k}]"
        meta = _get(topic, "topic_metadata", at)
        at_meta = f"{at}.topic_metadata"
        for key in ("name", "type", "serialization_format"):
            as_string(meta, key, at_meta)
        if version >= 9:
            for j, profile in enumerate(as_list(meta, "offered_qos_profiles", at_meta)):
                check_qos(profile, f"{at_meta}.offered_qos_profiles[{j}]", distro)
        elif version >= 4:
            check_qos_text(as_string(meta, "offered_qos_profiles", at_meta),
                           f"{at_meta}.offered_qos_profiles", distro)
        if version >= 7:
            as_string(meta, "type_description_hash", at_meta)
        as_uint64(topic, "message_count", at)
    paths = as_list(info, "relative_file_paths", where)
    for k in range(len(paths)):
        as_string({"p": paths[k]}, "p", f"{where}.relative_file_paths[{k}]")
    if version >= 3:
        as_string(info, "compression_format", where)
        as_string(info, "compression_mode", where)
    if version >= 5:
        for k, file in enumerate(as_list(info, "files", where)):
            at = f"{where}.files[{k}]"
            as_string(file, "path", at)
            _time(file, "starting_time", at, "nanoseconds_since_epoch")
            _time(file, "duration", at, "nanoseconds")
            as_uint64(file, "message_count", at)
    if version >= 6:
        custom = _get(info, "custom_data", where)  # iterated: a map, or null (no entries)
        if custom is not None and not isinstance(custom, dict):
            raise Rosbag2Rejects(f"{where}.custom_data: a {type(custom).__name__}, not a map")
        for key in custom or {}:
            as_string({"k": key}, "k", f"{where}.custom_data key")
            as_string(custom, key, f"{where}.custom_data")
    if version >= 8:
        as_string(info, "ros_distro", where)
    return version


def check_metadata_file(text: str, distro: str) -> dict:
    """metadata.yaml as the distro's MetadataIo::read_metadata decodes it; the information."""
    doc = yaml.safe_load(text)
    info = _get(doc, "rosbag2_bagfile_information", "metadata.yaml")
    check_bag_information(info, distro, "metadata.yaml")
    return info
