"""Launch the ovseg segmentation node, optionally with the sample replay and RViz.

    ros2 launch ovseg_ros segment.launch.py image:=/camera/color/image_raw
    ros2 launch ovseg_ros segment.launch.py replay:=true rviz:=true
    ros2 launch ovseg_ros segment.launch.py namespace:=robot1 device:=cuda \
        prompts:="['person', 'chair', 'door']" params_file:=/path/to/my.yaml
    ros2 launch ovseg_ros segment.launch.py namespace:=robot1 cameras:="['front', 'rear']"
        (reads robot1/front/image and robot1/rear/image; publishes ~/front/labels, ...)

Launch arguments listed in NODE_PARAMETER_ARGUMENTS override the params file only when given
(non-empty). Only generate_launch_description imports launch, so this file stays importable
(and testable) where launch is not installed.
"""

from __future__ import annotations

# name -> (default, description). Plain data: tests read it with `ast`.
ARGUMENTS = {
    "image": ("/camera/image_raw", "Input image topic (raw); compressed input subscribes "
              "<image>/compressed."),
    "namespace": ("", "Namespace for the node(s)."),
    "node_name": ("ovseg", "Name of the segmentation node."),
    "params_file": ("", "Parameter YAML; empty = the package's config/segment.yaml."),
    "device": ("", "Override the device parameter (auto, cpu, cuda, cuda:N)."),
    "prompts": ("", "Override the prompts parameter, e.g. \"['person', 'chair']\"."),
    "cameras": ("", "Override the cameras parameter, e.g. \"['front', 'rear']\": inputs "
                "<namespace>/<cam>/image, outputs ~/<cam>/...; `image` is then unused."),
    "input_transport": ("", "Override input_transport (raw or compressed)."),
    "qos": ("", "Override qos (sensor_data, reliable or auto)."),
    "replay": ("false", "Also start the replay node publishing the sample images on <image>."),
    "replay_source": ("", "Image, folder or video for the replay node; empty = samples."),
    "replay_rate": ("2.0", "Replay frame rate in Hz."),
    "rviz": ("false", "Also start RViz with rviz/ovseg.rviz."),
    "log_level": ("info", "Log level of the segmentation node."),
}

# Launch arguments forwarded as node parameters of the same name (when non-empty).
NODE_PARAMETER_ARGUMENTS = ("device", "prompts", "cameras", "input_transport", "qos")
LIST_ARGUMENTS = ("prompts", "cameras")  # parsed as YAML lists


def parameter_overrides(values: dict[str, str]) -> dict[str, object]:
    """Launch-argument strings -> node parameters, skipping empty ones. prompts and cameras
    are parsed as YAML: prompts:="['a', 'b']" is a list, a single name a one-element list."""
    import yaml

    out: dict[str, object] = {}
    for name, text in values.items():
        if not text.strip():
            continue
        if name not in LIST_ARGUMENTS:  # the other forwarded parameters are plain strings
            out[name] = text.strip()
            continue
        value = yaml.safe_load(text)
        out[name] = [value] if isinstance(value, str) else [str(v) for v in value]
    return out


def generate_launch_description():
    import os

    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    share = get_package_share_directory("ovseg_ros")

    def setup(context):
        def arg(name: str) -> str:
            return LaunchConfiguration(name).perform(context)

        params_file = arg("params_file") or os.path.join(share, "config", "segment.yaml")
        overrides = parameter_overrides({n: arg(n) for n in NODE_PARAMETER_ARGUMENTS})
        image = arg("image")
        actions = [Node(
            package="ovseg_ros", executable="segment_node", name=arg("node_name"),
            namespace=arg("namespace"), output="screen", emulate_tty=True,
            parameters=[params_file, overrides],
            remappings=[("image", image), ("image/compressed", image + "/compressed")],
            arguments=["--ros-args", "--log-level", arg("log_level")],
        )]
        if arg("replay").lower() == "true":
            actions.append(Node(
                package="ovseg_ros", executable="replay_node", name="replay",
                namespace=arg("namespace"), output="screen",
                parameters=[{"source": arg("replay_source"),
                             "rate": float(arg("replay_rate"))}],
                remappings=[("image", image), ("image/compressed", image + "/compressed")],
            ))
        if arg("rviz").lower() == "true":
            actions.append(Node(
                package="rviz2", executable="rviz2", name="rviz", output="screen",
                arguments=["-d", os.path.join(share, "rviz", "ovseg.rviz")],
            ))
        return actions

    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=setup)])
