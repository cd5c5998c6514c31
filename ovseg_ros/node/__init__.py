"""The ROS 2 layer: segmentation node, replay node, parameters, worker, diagnostics.

rclpy itself is imported by segment_node, replay_node, runner, compat, camera, params, qos and
demo; messages, cloud_messages, frames, depth_input, diagnostics and outputs use ROS message
types but not rclpy; worker, config and paramdocs need no ROS at all, so they are tested (and
the parameter reference generated) without a ROS install.
"""
