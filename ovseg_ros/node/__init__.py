"""The ROS 2 layer: segmentation node, replay node, parameters, worker, diagnostics.

Only segment_node, replay_node, runner, compat, messages and qos import rclpy; worker, params and
diagnostics are ROS-free so they can be tested (and the parameters read) without a ROS install.
"""

from ovseg_ros.node.early_signals import exit_quietly_on_signals, started_as_module

if started_as_module():  # `python -m ovseg_ros.node.segment_node`: before torch is imported
    exit_quietly_on_signals()
