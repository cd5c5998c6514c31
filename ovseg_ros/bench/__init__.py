"""Benchmarks: `python -m ovseg_ros.bench --help`. Results and how to read them:
doc/performance.md."""
