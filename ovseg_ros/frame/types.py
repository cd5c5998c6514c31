"""The message types every output is built with, without ROS: a rosbags typestore per ROS 2
distro, with this package's messages and the foreign interfaces it publishes (vision_msgs'
LabelInfo and Detection2DArray/Detection3DArray, semantic_inference_msgs' FeatureImage)
registered from their definition text.

The definition texts travel inside the Python package (`definitions/<package>/msg/`): a wheel
from `pip install .` carries this package's own `msg/*.msg` there too (setup.py copies them at
build time, CMakeLists.txt at install), and a source checkout reads the repository's `msg/`.
So `ovseg bag` and `ovseg segment` need no ament index and no rclpy.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

DISTROS = ("humble", "iron", "jazzy", "kilted")
DEFINITIONS = Path(__file__).resolve().parent / "definitions"
SOURCE_MSG = Path(__file__).resolve().parents[2] / "msg"  # a source checkout's msg/
# (package, message) registered from definition text, dependencies first.
REGISTERED = (("ovseg_ros", "LabelEntry"), ("ovseg_ros", "ClassStat"), ("ovseg_ros", "LabelMap"),
              ("ovseg_ros", "Segmentation"), ("ovseg_ros", "FeatureMap"),
              ("vision_msgs", "VisionClass"), ("vision_msgs", "LabelInfo"),
              ("vision_msgs", "Point2D"), ("vision_msgs", "Pose2D"),
              ("vision_msgs", "BoundingBox2D"), ("vision_msgs", "ObjectHypothesis"),
              ("vision_msgs", "ObjectHypothesisWithPose"), ("vision_msgs", "Detection2D"),
              ("vision_msgs", "Detection2DArray"), ("vision_msgs", "BoundingBox3D"),
              ("vision_msgs", "Detection3D"), ("vision_msgs", "Detection3DArray"),
              ("semantic_inference_msgs", "FeatureVector"),
              ("semantic_inference_msgs", "FeatureImage"))


class DefinitionError(RuntimeError):
    """A message definition is missing from the installed package (a broken install)."""


def default_distro() -> str:
    """The environment's distro (scripts/env.sh's OVSEG_ENV_DISTRO, or ROS_DISTRO as a sourced
    distro sets it), else kilted."""
    for var in ("OVSEG_ENV_DISTRO", "ROS_DISTRO"):
        if os.environ.get(var, "") in DISTROS:
            return os.environ[var]
    return "kilted"


def definition_text(package: str, name: str) -> str:
    """The `.msg` text of package/msg/name shipped with ovseg_ros."""
    folders = [DEFINITIONS / package / "msg"]
    if package == "ovseg_ros":
        folders.append(SOURCE_MSG)
    for folder in folders:
        path = folder / f"{name}.msg"
        if path.is_file():
            return path.read_text()
    looked = ", ".join(str(f) for f in folders)
    raise DefinitionError(f"no definition of {package}/msg/{name} in {looked}: reinstall "
                          "ovseg_ros (pip install . or colcon build)")


@cache
def typestore(distro: str) -> Any:
    """The distro's rosbags typestore with the REGISTERED types added (one per distro)."""
    if distro not in DISTROS:
        raise ValueError(f"unknown distro {distro!r}: one of {', '.join(DISTROS)}")
    store = get_typestore(getattr(Stores, f"ROS2_{distro.upper()}"))
    types: dict = {}
    for package, name in REGISTERED:
        types.update(get_types_from_msg(definition_text(package, name), f"{package}/msg/{name}"))
    store.register(types)
    return store


def definition(distro: str, msgtype: str) -> tuple[str, str] | None:
    """(msgdef text, RIHS01 hash) of a type in the distro's typestore, None if unknown."""
    store = typestore(distro)
    if msgtype not in store.types:
        return None
    text, _ = store.generate_msgdef(msgtype, ros_version=2)
    return text, store.hash_rihs01(msgtype)
