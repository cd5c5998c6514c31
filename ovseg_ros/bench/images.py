"""Benchmark images: the repository's samples/*.jpg resized, else smooth synthetic blobs.
numpy and OpenCV only, so the camera subprocess starts fast."""

from __future__ import annotations

import cv2
import numpy as np

from ovseg_ros.io.media import samples_dir


def sample_images(size: tuple[int, int], limit: int = 3) -> list[np.ndarray]:
    """RGB uint8 (H, W, 3) images resized to `size` (H, W)."""
    samples = samples_dir()
    files = sorted(samples.glob("*.jpg"))[:limit] if samples.is_dir() else []
    out = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is not None:
            out.append(cv2.resize(bgr, size[::-1], interpolation=cv2.INTER_AREA)[..., ::-1].copy())
    rng = np.random.default_rng(0)
    while len(out) < limit:  # synthetic fallback: smooth colour blobs, not noise
        small = rng.integers(0, 256, (size[0] // 32 + 2, size[1] // 32 + 2, 3), dtype=np.uint8)
        out.append(cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC))
    return out
