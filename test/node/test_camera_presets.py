"""The launch file's `camera` presets (node/camera_presets.py): for every preset, the launch
description resolves to that driver's image, depth and camera_info topics, gives the replay its
frame and RViz its fixed frame; explicit arguments win; an unknown preset fails the launch at
once, listing the presets; doc/cameras.md shows one command per preset. Run against the launch
stand-ins of helpers/launch_fakes.py (`launch` has no wheels)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from helpers.launch_fakes import ROOT, launch_setup

from ovseg_ros.core.settings import ConfigError
from ovseg_ros.node.camera_presets import PRESETS, camera_setup, preset_names

CAMERAS_DOC = ROOT / "doc" / "cameras.md"


def remaps(action) -> dict[str, str]:
    return dict(action.kwargs["remappings"])


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_resolves_to_its_drivers_topics(monkeypatch, name):
    preset = PRESETS[name]
    setup, context = launch_setup(monkeypatch)
    args = {**context, "camera": name, "replay": "true", "rviz": "true",
            "namespace": "robot1", "use_depth": "true" if preset.depth else ""}
    seg, replay, rviz = setup(args)
    expected = {"image": preset.image, "image/compressed": preset.image + "/compressed",
                "depth": preset.depth or "depth", "camera_info": preset.camera_info}
    assert remaps(seg) == expected
    assert remaps(replay) == expected  # the replay stands in for that driver...
    assert replay.kwargs["parameters"][0]["frame_id"] == preset.frame  # ...with its frame
    overrides = seg.kwargs["parameters"][-1]
    if preset.transport == "raw":  # the parameter files' input_transport stays
        assert "input_transport" not in overrides
    else:
        assert overrides["input_transport"] == preset.transport
    config = Path(rviz.kwargs["arguments"][1])
    data = yaml.safe_load(config.read_text())
    config.unlink()
    manager = data["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == preset.frame
    topics = {d["Name"]: d["Topic"]["Value"] for d in manager["Displays"]}
    assert topics["Input"] == preset.image
    assert topics["Segmentation overlay"] == "/robot1/ovseg/overlay"
    assert topics["Semantic cloud"] == "/robot1/ovseg/points"


def test_drivers_use_absolute_names_and_optical_frames():
    for name, p in PRESETS.items():
        if name == "default":
            continue  # the replay's names, relative to the namespace for depth and info
        for topic in (p.image, p.camera_info) + ((p.depth,) if p.depth else ()):
            assert re.fullmatch(r"(/[A-Za-z][A-Za-z0-9_]*)+", topic), (name, topic)
        assert p.start and p.source and p.transport in ("raw", "compressed")
    assert PRESETS["realsense"].frame.endswith("_optical_frame")
    assert PRESETS["zed"].frame.endswith("_frame_optical")
    assert PRESETS["oak"].frame.endswith("_optical_frame")


def test_explicit_arguments_override_the_preset(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    seg, rviz = setup({**context, "camera": "realsense", "image": "/front/color/image_raw",
                       "rviz_frame": "base_link", "rviz": "true"})
    assert remaps(seg) == {
        "image": "/front/color/image_raw", "image/compressed": "/front/color/image_raw/compressed",
        "depth": PRESETS["realsense"].depth, "camera_info": PRESETS["realsense"].camera_info}
    config = Path(rviz.kwargs["arguments"][1])
    assert yaml.safe_load(config.read_text())["Visualization Manager"]["Global Options"][
        "Fixed Frame"] == "base_link"
    config.unlink()
    seg = setup({**context, "camera": "zed", "depth": "/d", "camera_info": "/i"})[0]
    assert remaps(seg)["depth"] == "/d" and remaps(seg)["camera_info"] == "/i"
    assert remaps(seg)["image"] == PRESETS["zed"].image


def test_the_default_is_what_the_launch_did_before_presets(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    assert context["camera"] == "default"
    assert remaps(setup(context)[0]) == {
        "image": "/camera/image_raw", "image/compressed": "/camera/image_raw/compressed",
        "depth": "depth", "camera_info": "camera_info"}


def test_an_unknown_preset_fails_at_once_listing_the_presets(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    with pytest.raises(ConfigError) as err:
        setup({**context, "camera": "kinect", "replay": "true"})
    text = str(err.value)
    assert "camera:='kinect' is not a camera preset" in text
    assert all(name in text for name in PRESETS) and preset_names() in text


def test_depth_from_a_camera_without_one_needs_depth_argument(monkeypatch, tmp_path):
    setup, context = launch_setup(monkeypatch)
    with pytest.raises(ConfigError, match="camera:=usb_cam has no depth camera"):
        setup({**context, "camera": "usb_cam", "use_depth": "true"})
    params = tmp_path / "p.yaml"  # use_depth from a params file counts too
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"use_depth": True}}}))
    with pytest.raises(ConfigError, match="has no depth camera"):
        setup({**context, "camera": "v4l2_camera", "params_file": str(params)})
    seg = setup({**context, "camera": "usb_cam", "use_depth": "true", "depth": "/rgbd/depth"})[0]
    assert remaps(seg)["depth"] == "/rgbd/depth"
    assert camera_setup("usb_cam").depth == "depth"  # without depth: the unused default


def test_the_cameras_page_has_one_command_per_preset():
    text = CAMERAS_DOC.read_text()
    shown = re.findall(r"ros2 launch ovseg_ros segment\.launch\.py camera:=(\w+)", text)
    assert set(shown) == set(PRESETS), shown
    for name, p in PRESETS.items():
        assert p.start in text, f"{name}: the driver's start command is not on the page"
        assert p.image in text, f"{name}: its image topic is not on the page"
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" in text
