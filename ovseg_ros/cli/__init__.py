"""The `ovseg` command line: the same core as the ROS node, on images, folders and videos."""
