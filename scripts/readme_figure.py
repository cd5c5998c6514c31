"""Make the README's figure, doc/images/overview.png: one shipped sample segmented as the demo
does it (its prompts, the real weights when they can be had, else seeded random ones), the
colour overlay beside the labelled point cloud built from the sample's synthetic depth, seen
from above and behind the camera.

    source scripts/env.sh && python scripts/readme_figure.py [--out doc/images/overview.png]

The cloud view is a plain perspective projection of the points (numpy + OpenCV), drawn far to
near so nearer points cover farther ones; no 3D viewer is needed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.config import DEFAULT_HEADS_URL, RANDOM
from ovseg_ros.core.weights import probe_weights
from ovseg_ros.geometry import build_cloud, synthetic_depth
from ovseg_ros.geometry.depth import decode_depth
from ovseg_ros.io.media import samples_dir
from ovseg_ros.node.demo import PROMPTS
from ovseg_ros.viz import colorize, overlay

ROOT = Path(__file__).resolve().parents[1]


def view_cloud(xyz: np.ndarray, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 3) optical-frame points (x right, y down, z forward) and (N, 3) uint8 colours ->
    an image (size = (w, h)) from a virtual camera 1 m behind and 1.5 m above the real one,
    pitched 30 degrees down."""
    w, h = size
    pitch = math.radians(30.0)
    rot = np.array([[1, 0, 0],
                    [0, math.cos(pitch), -math.sin(pitch)],
                    [0, math.sin(pitch), math.cos(pitch)]])
    eye = np.array([0.0, -1.5, -1.0])  # y up is negative in the optical frame
    p = (xyz - eye) @ rot.T
    keep = p[:, 2] > 0.1
    p, col = p[keep], rgb[keep]
    f = 0.6 * w
    u = (f * p[:, 0] / p[:, 2] + w / 2).astype(int)
    v = (f * p[:, 1] / p[:, 2] + 0.62 * h).astype(int)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    order = np.argsort(-p[inside, 2])  # far first
    img = np.full((h, w, 3), 255, np.uint8)
    for uu, vv, c in zip(u[inside][order], v[inside][order], col[inside][order], strict=True):
        cv2.circle(img, (int(uu), int(vv)), 1, tuple(int(x) for x in c), -1)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "doc" / "images" / "overview.png")
    ap.add_argument("--sample", default="astronaut.jpg")
    args = ap.parse_args(argv)
    model, clip, heads = "ViT-B-16", "laion2b_s34b_b88k", DEFAULT_HEADS_URL
    problem = probe_weights(model, clip, heads)
    if problem:
        print(f"real weights unavailable ({problem}): seeded random weights, meaningless labels")
        clip = heads = RANDOM
    seg = Segmenter(SegmenterConfig(model=model, clip_weights=clip, heads=heads))
    seg.set_prompts(PROMPTS)
    bgr = cv2.imread(str(samples_dir() / args.sample), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    res = seg.segment(rgb)
    legend = sorted(((s.class_id, s.class_name) for s in res.stats if s.pixel_fraction > 0),
                    key=lambda c: c[0])
    left = overlay(rgb, res.labels, 0.5, legend)

    syn = synthetic_depth(rgb)
    h, w = syn.depth_mm.shape
    depth = decode_depth("16UC1", h, w, 2 * w, False, syn.depth_mm.tobytes())
    cloud = build_cloud(depth, res.labels, res.confidence, syn.intrinsics, stride=2)
    pts = cloud.points.reshape(-1)
    valid = np.isfinite(pts["z"])
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], axis=1)[valid]
    # class points in their label colour over the image's colour, background in the image's
    labels = pts["label"][valid].astype(np.uint16)
    image = rgb[::2, ::2].reshape(-1, 3)[valid].astype(np.float32)
    tint = colorize(labels[:, None])[:, 0].astype(np.float32)
    colours = np.where((labels > 0)[:, None], 0.3 * image + 0.7 * tint, image).astype(np.uint8)
    right = view_cloud(xyz, colours, (w, h))
    cv2.putText(right, "labelled cloud (synthetic depth)", (10, h - 12),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.concatenate([left, right], axis=1)[..., ::-1])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
