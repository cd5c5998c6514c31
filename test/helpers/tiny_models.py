"""Seeded random models for tests: the tiny open_clip ViT (ovseg_ros.core.tiny), its weights
file and a head checkpoint.

Nothing here downloads anything: weights are made from a seed and written to files, then loaded
back through the same paths users use (a local CLIP weights file, a published-format checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.dinoiser import DinoiserHeads
from ovseg_ros.core.tiny import TINY, WIDTH, register_tiny

TINY_WIDTH = WIDTH


def write_clip_weights(path: Path, model_name: str = TINY, seed: int = 0) -> Path:
    """Save a seeded random CLIP state dict to `path`."""
    torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None)
    torch.save(model.state_dict(), path)
    return path


def random_head_state(width: int = TINY_WIDTH, seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    heads = DinoiserHeads(width)
    return {k: v.clone() for k, v in heads.state_dict().items()}


def write_heads(path: Path, width: int = TINY_WIDTH, seed: int = 1, state=None) -> Path:
    """Save a head checkpoint in the published format {'epoch', 'model_state_dict'}."""
    torch.save({"epoch": 0, "model_state_dict": state or random_head_state(width, seed)}, path)
    return path


def tiny_files(directory: Path, seed: int = 0) -> tuple[str, Path, Path]:
    """(model name, CLIP weights file, head checkpoint) for the tiny model under `directory`
    (made if missing: registering the model writes there only the first time per process)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = register_tiny(directory)
    clip = directory / f"clip-{seed}.pt"
    heads = directory / f"heads-{seed}.pt"
    if not clip.exists():
        write_clip_weights(clip, name, seed)
    if not heads.exists():
        write_heads(heads, seed=seed + 1)
    return name, clip, heads


def tiny_segmenter(directory: Path, **overrides) -> Segmenter:
    """A Segmenter on the tiny model, loaded from files; fp32 CPU torch unless overridden
    (the backend tests ask for onnxruntime themselves: its export takes seconds)."""
    name, clip, heads = tiny_files(directory)
    cfg = dict(model=name, clip_weights=str(clip), heads=str(heads), device="cpu",
               precision="fp32", backend="torch", input_size=0,
               cache_dir=str(directory / "cache"))
    cfg.update(overrides)
    return Segmenter(SegmenterConfig(**cfg))
