"""Camera driver presets for the launch file's `camera` argument: for each driver robots use, the
colour image, registered (aligned) depth and CameraInfo topics, the image transport and the
colour camera's optical frame, as that driver publishes them with its default names. Explicit
`image:=`, `depth:=`, `camera_info:=` and `rviz_frame:=` arguments override a preset's value.

ROS-free and launch-free: launch/segment.launch.py, its tests and doc/cameras.md read it. The
names were read from each driver's sources at the version given in `source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ovseg_ros.core.settings import ConfigError


@dataclass(frozen=True)
class CameraPreset:
    """What one driver publishes. depth "" = the driver has no depth camera."""

    image: str
    depth: str
    camera_info: str
    frame: str  # the colour camera's optical frame: header.frame_id of image and depth
    start: str  # the driver's command that publishes these names
    source: str  # where (and at which version) the names were read
    transport: str = "raw"  # the node's input_transport for it


PRESETS: dict[str, CameraPreset] = {
    # The package's own replay node (replay:=true) and ovseg_ros.bag.sample's recordings.
    "default": CameraPreset(
        image="/camera/image_raw", depth="depth", camera_info="camera_info", frame="camera",
        start="ros2 launch ovseg_ros segment.launch.py replay:=true",
        source="ovseg_ros' replay node (node/replay_node.py; frame_id default 'camera')"),
    "realsense": CameraPreset(
        image="/camera/camera/color/image_raw",
        depth="/camera/camera/aligned_depth_to_color/image_raw",
        camera_info="/camera/camera/color/camera_info", frame="camera_color_optical_frame",
        start="ros2 launch realsense2_camera rs_launch.py align_depth.enable:=true",
        source="realsense-ros 4.55.1 (README 'Published Topics'; camera_namespace and "
               "camera_name default 'camera'; OPTICAL_FRAME_ID in base_realsense_node.h)"),
    "zed": CameraPreset(
        image="/zed/zed_node/rgb/color/rect/image",
        depth="/zed/zed_node/depth/depth_registered",
        camera_info="/zed/zed_node/rgb/color/rect/camera_info",
        frame="zed_left_camera_frame_optical",
        start="ros2 launch zed_wrapper zed_camera.launch.py camera_model:=zed2i",
        source="zed-ros2-wrapper 5.4.1 (zed_camera_component_video_depth.cpp; names since "
               "5.1.0, before it ~/rgb/image_rect_color; camera_name 'zed', node 'zed_node')"),
    "oak": CameraPreset(
        image="/oak/rgb/image_raw", depth="/oak/stereo/image_raw",
        camera_info="/oak/rgb/camera_info", frame="oak_rgb_camera_optical_frame",
        start="ros2 launch depthai_ros_driver camera.launch.py",
        source="depthai-ros 2.10.3 (depthai_ros_driver: stereo aligned to rgb by default, "
               "stereo.i_align_depth; node name 'oak'; base_node.cpp getOpticalTFPrefix)"),
    "usb_cam": CameraPreset(
        image="/camera1/image_raw", depth="", camera_info="/camera1/camera_info",
        frame="camera", start="ros2 launch usb_cam camera.launch.py",
        source="usb_cam 0.8.1 (launch/camera.launch.py remaps to camera1/; "
               "config/params_1.yaml frame_id 'camera')"),
    "v4l2_camera": CameraPreset(
        image="/image_raw", depth="", camera_info="/camera_info", frame="camera",
        start="ros2 run v4l2_camera v4l2_camera_node",
        source="ros2_v4l2_camera 0.5.0 (src/v4l2_camera.cpp: image_raw, camera_info; "
               "camera_frame_id default 'camera')"),
    # `ros2 bag play` of a bag with the topics `ovseg bag` writes and reads by default.
    "bag": CameraPreset(
        image="/camera/image_raw", depth="/camera/depth/image_raw",
        camera_info="/camera/camera_info", frame="camera",
        start="ros2 bag play recorded_run/ --loop",
        source="ovseg_ros.bag.sample (the topics of the recordings doc/bags.md uses)"),
}


@dataclass(frozen=True)
class CameraSetup:
    """The topics and frame a launch uses: a preset with the explicit arguments on top."""

    preset: str
    image: str
    depth: str
    camera_info: str
    frame: str
    transport: str


def preset_names() -> str:
    return ", ".join(PRESETS)


def camera_setup(camera: str, image: str = "", depth: str = "", camera_info: str = "",
                 frame: str = "", use_depth: Callable[[], bool] = lambda: False
                 ) -> CameraSetup:
    """The preset `camera` with non-empty arguments overriding its values. ConfigError for an
    unknown preset (listing them), or depth asked of a preset without one and no depth:=
    (`use_depth` is asked only then: the launch reads it from the parameter files)."""
    name = camera.strip() or "default"
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError(f"launch argument camera:={camera!r} is not a camera preset; "
                          f"presets: {preset_names()} (doc/cameras.md)")
    depth = depth.strip() or preset.depth
    if not depth and use_depth():
        raise ConfigError(f"camera:={name} has no depth camera; with use_depth:=true give "
                          "depth:=<registered depth topic> and camera_info:=<its topic>")
    return CameraSetup(name, image.strip() or preset.image, depth or "depth",
                       camera_info.strip() or preset.camera_info, frame.strip() or preset.frame,
                       preset.transport)


def node_topic_prefix(namespace: str, node_name: str) -> str:
    """'/robot1/ovseg': where the node's ~/ outputs are."""
    return "/" + "/".join(p for p in (namespace.strip("/"), node_name.strip("/")) if p)


def rviz_config(template: str, setup: CameraSetup, node_prefix: str) -> str:
    """rviz/ovseg.rviz for this launch: the fixed frame from the setup, the input display on
    its image topic, the node's outputs under `node_prefix` instead of /ovseg."""
    import yaml

    data = yaml.safe_load(template)
    manager = data["Visualization Manager"]
    manager.setdefault("Global Options", {})["Fixed Frame"] = setup.frame
    for display in manager["Displays"]:
        topic = display.get("Topic", {})
        value = topic.get("Value", "")
        if display.get("Name") == "Input":
            topic["Value"] = setup.image
        elif value.startswith("/ovseg/"):
            topic["Value"] = node_prefix + value[len("/ovseg"):]
    return yaml.safe_dump(data, sort_keys=False)
