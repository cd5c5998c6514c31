"""Benchmarks: `python -m ovseg_ros.bench --help`. See README.md (Benchmarks)."""
