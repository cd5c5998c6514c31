"""Shared test code: fixtures, tiny models, ROS and process helpers (no tests here)."""
