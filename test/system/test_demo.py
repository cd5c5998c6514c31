"""The README's main job, `scripts/demo.sh` = `python -m ovseg_ros.node.demo`, end to end in a
child process: the replay node and the segmentation node over real ROS, saving overlays and
point clouds from the shipped samples (seeded random weights: CI has no real ones)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ovseg_ros.io.media import list_images, read_image, samples_dir
from ovseg_ros.node import demo  # the module the child runs (and a ROS test: it imports rclpy)

pytestmark = pytest.mark.slow  # minutes of processes, load or signals: not the inner loop


def _read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    """(header lines, (N, 3) float32 xyz) of a binary little-endian PLY written by write_ply."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"], header[:2]
    count = next(int(h.split()[2]) for h in header if h.startswith("element vertex"))
    vertex = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                       ("green", "u1"), ("blue", "u1"), ("label", "<u4"),
                       ("confidence", "<f4")])
    assert len(raw) - end == count * vertex.itemsize  # exactly the announced vertices
    v = np.frombuffer(raw, vertex, count=count, offset=end)
    return header, np.stack([v["x"], v["y"], v["z"]], axis=1)


def test_demo_saves_overlays_and_point_clouds_of_the_samples(tmp_path, ros_domain_id):
    out = tmp_path / "demo_out"
    env = dict(os.environ, ROS_DOMAIN_ID=str(ros_domain_id))
    done = subprocess.run(
        [sys.executable, "-m", demo.__name__, "--frames", "2", "--out", str(out),
         "--clip-weights", "random", "--heads", "random", "--input-size", "224",
         "--timeout", "240"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "saved 2 overlays and 2 point clouds" in done.stdout, done.stdout[-2000:]

    sizes = {read_image(f).shape[:2] for f in list_images(samples_dir())}
    for i in range(2):
        png = (out / f"overlay_{i:03d}.png").read_bytes()
        overlay = _png(png)
        assert overlay.shape[:2] in sizes  # the overlay of one sample, at its own size
        header, xyz = _read_ply(out / f"points_{i:03d}.ply")
        assert any("synthetic" in h.lower() for h in header if h.startswith("comment"))
        assert len(xyz) > 1000 and np.isfinite(xyz).all()  # invalid depth is left out
        assert (xyz[:, 2] > 0).all()  # in front of the camera (optical frame: z forward)


def _png(data: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None, "overlay is not a PNG"
    return img
