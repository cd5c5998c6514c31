"""What produced an evaluation's numbers: weight-file hashes, software versions, device."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import open_clip
import torch

import ovseg_ros
from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.weights import RANDOM, file_sha256, local_clip_file, resolve_checkpoint


def weights_identity(cfg: SegmenterConfig) -> dict[str, str]:
    """sha256 of the CLIP weights and head checkpoint files `cfg` names (after the Segmenter
    has loaded them, so they are local), or "random(seed=N)" for seeded random weights."""
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    random = f"{RANDOM}(seed={cfg.seed})"
    clip = local_clip_file(cfg.model, cfg.clip_weights, cache)
    heads = None if cfg.heads == RANDOM else resolve_checkpoint(cfg.heads, cache,
                                                                cfg.heads_sha256)
    return {
        "clip_sha256": file_sha256(clip) if clip else random,
        "heads_sha256": file_sha256(heads) if heads else f"{RANDOM}(seed={cfg.seed + 1})",
    }


def environment() -> dict[str, str]:
    """Software versions that can move the numbers slightly (kernels, resize code)."""
    return {
        "ovseg_ros": ovseg_ros.__version__, "python": platform.python_version(),
        "torch": torch.__version__, "open_clip": open_clip.__version__,
        "numpy": np.__version__, "platform": f"{sys.platform}-{platform.machine()}",
    }


def device_info(seg: Segmenter) -> dict[str, str]:
    """The device and resolved precision the Segmenter runs with."""
    return {"device_type": seg.runtime.device.type, "device": seg.runtime.describe(),
            "precision": seg.runtime.precision}
