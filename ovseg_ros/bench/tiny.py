"""A tiny open_clip ViT for `--smoke`: the real code paths in seconds, numbers meaningless."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import open_clip

TINY = "ovseg-bench-tiny"
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 4, "width": 64, "patch_size": 16,
                   "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 2},
}


def register_tiny() -> str:
    """Register the tiny config with open_clip once per process; returns its model name."""
    if TINY not in open_clip.list_models():
        path = Path(tempfile.mkdtemp(prefix="ovseg-bench-")) / f"{TINY}.json"
        path.write_text(json.dumps(CONFIG))
        open_clip.add_model_config(path)
    return TINY
