"""The ROS 2 layer: segmentation node, replay node, parameters, worker, diagnostics.

Only segment_node, replay_node, runner, compat, messages and qos import rclpy; worker, params and
diagnostics are ROS-free so they can be tested (and the parameters read) without a ROS install.
"""
