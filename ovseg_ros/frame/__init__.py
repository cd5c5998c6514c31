"""The frame step and the messages, between the core (below) and the node, `ovseg bag` and
`ovseg segment` (above): one frame (or batch) in -> every output of it, ROS-free.

- types.py: message definitions (shipped in definitions/) registered into a rosbags typestore
- builder.py: making and serializing messages of one distro (CDR bytes)
- messages.py, cloud_messages.py: the output messages of a frame and of a vocabulary
- depth.py: a camera's registered depth, paired with its frames by stamp
- log.py: refused frames, counted and logged once per kind
- step.py: FrameStep, the one per-frame path, and the FrameSink protocol

Nothing here imports rclpy: messages are rosbags classes, serialized to CDR by the builder.
"""
