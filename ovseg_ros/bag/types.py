"""Message definitions for the bags `ovseg bag` writes.

Input connections are copied with the definition the bag carries; bags without one (sqlite3
from Humble-era rosbag2) get the definition from the typestore of a ROS distro (`--distro`).
The outputs' types (sensor_msgs, visualization_msgs, ...) come from the same typestore, this
package's own messages and vision_msgs' LabelInfo from their `.msg` files, registered into it.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ovseg_ros.bag import BagError

DISTROS = ("humble", "iron", "jazzy", "kilted")
# (package, message) registered from .msg files: ours, and vision_msgs (in no typestore).
OWN_TYPES = (("ovseg_ros", "LabelEntry"), ("ovseg_ros", "ClassStat"), ("ovseg_ros", "LabelMap"),
             ("ovseg_ros", "Segmentation"), ("ovseg_ros", "FeatureMap"),
             ("vision_msgs", "VisionClass"),
             ("vision_msgs", "LabelInfo"))
REPO_MSG = Path(__file__).resolve().parents[2] / "msg"  # a source checkout's msg/


def default_distro() -> str:
    """The environment's distro (scripts/env.sh's OVSEG_ENV_DISTRO, or ROS_DISTRO), else
    kilted."""
    for var in ("OVSEG_ENV_DISTRO", "ROS_DISTRO"):
        if os.environ.get(var, "") in DISTROS:
            return os.environ[var]
    return "kilted"


def typename(cls: type) -> str:
    """'sensor_msgs/msg/Image' for the rclpy class sensor_msgs.msg.Image."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def _msg_file(package: str, name: str) -> str:
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory(package), "msg", f"{name}.msg")
        if path.is_file():
            return path.read_text()
    except (ImportError, LookupError, ValueError):
        pass
    if package == "ovseg_ros" and (REPO_MSG / f"{name}.msg").is_file():
        return (REPO_MSG / f"{name}.msg").read_text()
    raise BagError(f"no {package}/msg/{name}.msg found: build and source the workspace "
                   "(scripts/setup.sh, then source scripts/env.sh)")


@cache
def typestore(distro: str):
    """The distro's rosbags typestore with this package's and vision_msgs' types added."""
    if distro not in DISTROS:
        raise BagError(f"unknown distro {distro!r}: one of {', '.join(DISTROS)}")
    store = get_typestore(getattr(Stores, f"ROS2_{distro.upper()}"))
    types: dict = {}
    for package, name in OWN_TYPES:
        types.update(get_types_from_msg(_msg_file(package, name), f"{package}/msg/{name}"))
    store.register(types)
    return store


def definition(distro: str, msgtype: str) -> tuple[str, str] | None:
    """(msgdef text, RIHS01 hash) of a type from the distro's typestore, None if unknown."""
    store = typestore(distro)
    if msgtype not in store.types:
        return None
    text, _ = store.generate_msgdef(msgtype, ros_version=2)
    return text, store.hash_rihs01(msgtype)
