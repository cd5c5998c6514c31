"""The tiny open_clip ViT for smoke runs (`--smoke` benchmarks, `--model ovseg-tiny`) and the
test suite: the real code paths in seconds, numbers meaningless. Its config is registered with
open_clip at run time."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

TINY = "ovseg-tiny"
WIDTH = 64  # vision width: what a head checkpoint for it must have
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 4, "width": WIDTH, "patch_size": 16,
                   "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 2},
}

# The tiny image tower with ViT-B-16's text tower (width 512, 12 layers): frames cost little
# and a new name costs what it costs with the real model (the storm tests and benchmark).
TINY_TEXT = "ovseg-tiny-text"
CONFIGS = {TINY: CONFIG,
           TINY_TEXT: {**CONFIG, "text_cfg": {"context_length": 77, "vocab_size": 49408,
                                              "width": 512, "heads": 8, "layers": 12}}}


def register_tiny(directory: Path | None = None, name: str = TINY) -> str:
    """Register a tiny config (`CONFIGS`) with open_clip once per process (its JSON is written
    into `directory`, default a new temporary folder); returns its model name."""
    import open_clip  # here: `ovseg weights` names TINY without loading open_clip

    if name not in open_clip.list_models():
        folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="ovseg-tiny-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.json"
        path.write_text(json.dumps(CONFIGS[name]))
        open_clip.add_model_config(path)
    return name
