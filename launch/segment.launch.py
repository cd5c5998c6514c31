"""Launch the ovseg segmentation node, optionally with the sample replay and RViz.

    ros2 launch ovseg_ros segment.launch.py camera:=realsense use_depth:=true
    ros2 launch ovseg_ros segment.launch.py image:=/my_camera/image_raw
    ros2 launch ovseg_ros segment.launch.py replay:=true rviz:=true
    ros2 launch ovseg_ros segment.launch.py replay:=true console:=true
        (then open http://127.0.0.1:8765/: the browser console, doc/console.md)
    ros2 launch ovseg_ros segment.launch.py namespace:=robot1 device:=cuda \
        prompts:="['person', 'chair', 'door']" params_file:=/path/to/my.yaml
    ros2 launch ovseg_ros segment.launch.py cameras:="['front', 'rear']"
        (reads <namespace>/front/image and .../rear/image; publishes ~/front/labels, ...)
    ros2 launch ovseg_ros segment.launch.py --show-args     (every argument, with its doc)

`camera` picks a driver preset (node/camera_presets.py, doc/cameras.md: realsense, zed, oak,
usb_cam, v4l2_camera, bag, default): the image, depth and camera_info topics, the transport and
RViz's fixed frame as that driver publishes them; image:=, depth:=, camera_info:= and
rviz_frame:= override it.

Every node parameter is also a launch argument of the same name (clip_weights:=/path/x.bin,
keyframes:=true, autostart:=false, ...); empty (the default) keeps the value of the parameter
files: the package's config/segment.yaml, then `params_file` on top of it. Values are checked
against the parameter's type and range here, so a mistake is one message naming the argument.
The launch ends when the segmentation node exits, and fails when it failed.

Only generate_launch_description imports launch, so this file stays importable (and testable)
where launch is not installed.
"""

from __future__ import annotations

from ovseg_ros.core.settings import ConfigError, settings_of
from ovseg_ros.node.camera_presets import (
    camera_setup,
    node_topic_prefix,
    preset_names,
    rviz_config,
)
from ovseg_ros.settings.parameters import BY_NAME, SETTINGS, ReplayConfig

# Arguments that are not node parameters: name -> (default, description).
LAUNCH_ARGUMENTS = {
    "camera": ("default", f"Camera driver preset ({preset_names()}; doc/cameras.md): sets "
               "image, depth, camera_info, the transport and rviz_frame as that driver "
               "publishes them."),
    "image": ("", "Input image topic (raw); compressed input subscribes <image>/compressed. "
              "Empty: the camera preset's. Unused with cameras (they read <cam>/image)."),
    "depth": ("", "Registered depth topic, with use_depth (relative: in the namespace). "
              "Empty: the camera preset's."),
    "camera_info": ("", "The colour camera's CameraInfo topic, with use_depth. Empty: the "
                    "camera preset's."),
    "rviz_frame": ("", "RViz's fixed frame, with rviz:=true. Empty: the camera preset's "
                   "optical frame."),
    "namespace": ("", "Namespace for the node(s)."),
    "node_name": ("ovseg", "Name of the segmentation node."),
    "params_file": ("", "Parameter YAML applied on top of the package's config/segment.yaml "
                    "(only the parameters it sets change)."),
    "replay": ("false", "Also start the replay node publishing the sample images on <image> "
               "(and synthetic depth on <depth> and <camera_info> with use_depth:=true)."),
    "replay_source": ("", "Image, folder or video for the replay node; empty = samples."),
    "replay_rate": ("2.0", "Replay frame rate in Hz."),
    "rviz": ("false", "Also start RViz with rviz/ovseg.rviz (needs rviz2 installed)."),
    "console": ("false", "Also start `ovseg console`: the browser console on the node "
                "(doc/console.md)."),
    "console_host": ("127.0.0.1", "Address the console listens on; beyond loopback it "
                     "prints a token that every request needs."),
    "console_port": ("8765", "Port of the console (0: any free port)."),
    "log_level": ("info", "Log level of the segmentation node (debug, info, warn, error)."),
}


def arguments() -> dict[str, tuple[str, str]]:
    """Every launch argument: the launch-only ones, then one per node parameter."""
    out = dict(LAUNCH_ARGUMENTS)
    for s in SETTINGS:
        out[s.name] = ("", f"Parameter {s.name} ({s.kind.__name__}"
                       + (f"; {s.constraints}" if s.constraints else "")
                       + f"; default {s.format(s.default)}): {s.doc}")
    return out


def replay_parameters(source: str, rate: str, use_depth: bool) -> dict[str, object]:
    """The replay node's parameters from the launch arguments (ConfigError when invalid)."""
    spec = {s.name: s for s in settings_of(ReplayConfig)}
    try:
        return {"source": source, "rate": spec["rate"].parse(rate), "depth": use_depth}
    except ConfigError as exc:
        raise ConfigError(f"launch argument replay_rate:={rate!r}: {exc}") from None


def parameter_overrides(values: dict[str, str]) -> dict[str, object]:
    """Launch-argument strings -> typed node parameters, skipping empty ones.

    Raises ConfigError naming the argument and what it expects. An empty list that is the
    parameter's default (cameras:="[]") is skipped too: ROS cannot type an empty list.
    """
    out: dict[str, object] = {}
    for name, text in values.items():
        if not text.strip():
            continue
        s = BY_NAME[name]
        try:
            value = s.parse(text)
        except ConfigError as exc:
            raise ConfigError(f"launch argument {name}:={text!r}: {exc}") from None
        if value == [] and s.default == []:
            continue
        out[name] = value
    return out


def console_arguments(node: str, host: str, port: str) -> list[str]:
    """`ovseg console`'s arguments for the node `node` (ConfigError for a bad port)."""
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(f"launch argument console_port:={port!r}: give a port, 0..65535")
    if not host.strip():
        raise ConfigError("launch argument console_host:='': give an address (127.0.0.1: "
                          "this machine only)")
    return ["console", "--node", node, "--host", host.strip(), "--port", str(number)]


def file_parameter(files: list[str], node_name: str, namespace: str, name: str,
                   default: object) -> object:
    """The value the parameter files give parameter `name` of the node, as rcl applies them:
    files in order, in each the sections whose key matches the node (`/**`, its name, its
    fully qualified name, `/**/<name>`), a later one overriding an earlier; else `default`.

    The launch needs it where another node must agree with the segmentation node: the replay
    publishes depth exactly when the node will subscribe it (use_depth may come from a file).
    """
    import yaml

    fqn = "/" + "/".join(p for p in (namespace.strip("/"), node_name) if p)
    keys = {"/**", node_name, "/" + node_name, fqn, fqn.lstrip("/"), "/**/" + node_name}
    value = default
    for path in files:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        for key, section in data.items():
            params = (section or {}).get("ros__parameters", {}) if isinstance(
                section, dict) else {}
            if key in keys and name in params:
                value = params[name]
    return value


def generate_launch_description():
    import os
    import sys
    import tempfile

    from ament_index_python.packages import (
        PackageNotFoundError,
        get_package_prefix,
        get_package_share_directory,
    )
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction
    from launch.events import Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    share = get_package_share_directory("ovseg_ros")

    def end_launch(event, context):
        """A node we started exited: end the launch; fail it when the node failed."""
        if event.returncode != 0:
            raise RuntimeError(f"{event.action.name} exited with code {event.returncode}; "
                               "see its log above")
        return [EmitEvent(event=Shutdown(reason=f"{event.action.name} exited"))]

    def setup(context):
        def arg(name: str) -> str:
            return LaunchConfiguration(name).perform(context)

        overrides = parameter_overrides({s.name: arg(s.name) for s in SETTINGS})
        params = [os.path.join(share, "config", "segment.yaml")]
        params += [arg("params_file")] if arg("params_file") else []

        def use_depth() -> bool:  # the launch argument, else the parameter files
            return bool(overrides.get("use_depth", file_parameter(
                params, arg("node_name"), arg("namespace"), "use_depth",
                BY_NAME["use_depth"].default)))

        # Before anything starts: an unknown preset fails the launch at once, no orphans.
        cam = camera_setup(arg("camera"), arg("image"), arg("depth"), arg("camera_info"),
                           arg("rviz_frame"), use_depth)
        if cam.transport != "raw" and "input_transport" not in overrides:
            overrides["input_transport"] = cam.transport
        node = node_topic_prefix(arg("namespace"), arg("node_name"))
        console = (console_arguments(node, arg("console_host"), arg("console_port"))
                   if arg("console").lower() == "true" else None)
        if arg("rviz").lower() == "true":
            try:
                get_package_prefix("rviz2")
            except PackageNotFoundError:
                distro = os.environ.get("ROS_DISTRO", "<distro>")
                raise RuntimeError(f"rviz:=true but rviz2 is not installed: sudo apt install "
                                   f"ros-{distro}-rviz2, or launch without rviz:=true") from None
        tty = sys.stdout.isatty()  # colours on a terminal only, never in log files
        remap = [("image", cam.image), ("image/compressed", cam.image + "/compressed"),
                 ("depth", cam.depth), ("camera_info", cam.camera_info)]
        actions = [Node(
            package="ovseg_ros", executable="segment_node", name=arg("node_name"),
            namespace=arg("namespace"), output="screen", emulate_tty=tty,
            parameters=params + [overrides], remappings=remap,
            arguments=["--ros-args", "--log-level", arg("log_level")], on_exit=end_launch,
        )]
        if arg("replay").lower() == "true":  # stands in for the camera: its names and frame
            actions.append(Node(
                package="ovseg_ros", executable="replay_node", name="replay",
                namespace=arg("namespace"), output="screen", emulate_tty=tty,
                parameters=[{**replay_parameters(arg("replay_source"), arg("replay_rate"),
                                                 use_depth()), "frame_id": cam.frame}],
                remappings=remap, on_exit=end_launch,
            ))
        if console is not None:  # a client of the node: its exit does not end the launch
            actions.append(Node(package="ovseg_ros", executable="ovseg", name="console",
                                output="screen", arguments=console))
        if arg("rviz").lower() == "true":
            with open(os.path.join(share, "rviz", "ovseg.rviz")) as f:
                text = rviz_config(f.read(), cam, node)
            fd, config = tempfile.mkstemp(prefix="ovseg-", suffix=".rviz")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            actions.append(Node(
                package="rviz2", executable="rviz2", name="rviz", output="screen",
                arguments=["-d", config],
            ))
        return actions

    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in arguments().items()]
    return LaunchDescription(declared + [OpaqueFunction(function=setup)])
