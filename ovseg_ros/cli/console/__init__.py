"""`ovseg console`: a browser page to watch and steer a running node (doc/console.md).

A ROS client process like the other node clients (cli/client.py): it talks to the node only
through its topics and services, and serves one page on loopback by default.
"""
