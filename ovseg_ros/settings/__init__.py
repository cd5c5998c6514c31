"""Every user-facing setting of the entry points, ROS-free and torch-free: the node's own
settings and the list of all its parameters (parameters.py, over the core's settings schema in
core/settings.py and core/config.py), and the command-line options derived from them
(options.py), which `ovseg segment`, `ovseg bag`, `ovseg eval`, the demo and the benchmarks
share. Below the node and the commands; imports only the core."""
