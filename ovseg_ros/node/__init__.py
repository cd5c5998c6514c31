"""The ROS 2 layer: the segmentation node over the frame step (ovseg_ros/frame), the replay
node, parameters, services, health (rclpy; elsewhere only the `ovseg` node clients in cli/ use
it). worker.py, background.py, diagnostics.py, paramdocs.py, camera_presets.py and
early_signals.py need no ROS, so they are tested (and the parameter reference generated)
without a ROS install.
"""

from ovseg_ros.node.early_signals import exit_quietly_on_signals, started_as_module

if started_as_module():  # `python -m ovseg_ros.node.segment_node`: before torch is imported
    exit_quietly_on_signals()
