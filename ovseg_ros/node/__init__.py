"""The ROS 2 layer: segmentation node, replay node, parameters, worker, diagnostics.

rclpy itself is imported by segment_node, control_services, query, prompt_text, camera,
params, qos, runner, compat, replay_node and demo; cloud_messages, depth_input, diagnostics,
features, frames, messages and outputs use ROS message types but not rclpy; worker, config,
paramdocs and early_signals need no ROS at all, so they are tested (and the parameter
reference generated) without a ROS install.
"""

from ovseg_ros.node.early_signals import exit_quietly_on_signals, started_as_module

if started_as_module():  # `python -m ovseg_ros.node.segment_node`: before torch is imported
    exit_quietly_on_signals()
