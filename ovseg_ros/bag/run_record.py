"""What decides an output bag's bits, written beside it (`ovseg_run.json` in the bag folder),
so that `--resume` refuses a partial made with other settings instead of writing a bag whose
halves disagree.

The record holds the resolved model and runtime (weights, backend and precision as `auto`
chose them, the CPU kernel class, the library versions), the segmentation and keyframe
settings, the vocabulary and every bag option that changes a written byte (`--batch` too: frames
segmented together round differently). Not the thread count: it changes no bit
(core/reproducible.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ovseg_ros.bag import BagError

FILE = "ovseg_run.json"


def run_record(pipeline: Any, settings: Any) -> dict[str, Any]:
    """The bits-deciding settings of a BagJob (pipeline: its FramePipeline; settings: its
    BagSettings), as plain JSON values."""
    import torch

    import ovseg_ros

    seg = pipeline.segmenter
    cfg, rt, node = seg.config, seg.runtime, settings.node
    model = {name: getattr(cfg, name) for name in (
        "model", "mode", "input_size", "window", "stride", "gamma", "delta", "background",
        "threshold", "label_ids", "seed")}
    model.update(weights=seg.weights_id, device=rt.device.type, backend=rt.backend,
                 precision="int8" if rt.int8 else str(rt.dtype).replace("torch.", ""),
                 text_dtype=str(seg.text_cache.dtype).replace("torch.", ""))
    keyframes = dataclasses.asdict(pipeline.config) if pipeline.config.enabled else False
    bag = {name: getattr(settings, name) for name in (
        "image_topics", "depth_topics", "info_topics", "ns", "copy", "outputs", "batch",
        "start", "end", "distro")}
    bag.update({name: getattr(node, name) for name in (
        "prompts", "overlay_alpha", "publish_confidence_mono8", "depth_slop_s",
        "points_stride", "max_image_pixels")})
    software = {"ovseg_ros": ovseg_ros.__version__, "torch": torch.__version__,
                "kernels": torch.backends.cpu.get_cpu_capability()
                if rt.device.type == "cpu" else rt.device.type}
    objects = dataclasses.asdict(settings.objects) if settings.objects.objects else False
    return json.loads(json.dumps({"model": model, "keyframes": keyframes, "objects": objects,
                                  "bag": bag, "software": software}, default=list))


def write_record(folder: Path, record: dict[str, Any]) -> None:
    (folder / FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_resumable(partial: Path, record: dict[str, Any], shown: str) -> None:
    """BagError (one line) unless the interrupted run's record equals `record`. shown: the
    partial's name as the user knows it."""
    try:
        old = json.loads((partial / FILE).read_text())
    except (OSError, ValueError):
        raise BagError(f"--resume: {shown} has no readable {FILE} (made by an older ovseg bag?), "
                       "so its settings are unknown: start over with --overwrite") from None
    before, now = _flat(old), _flat(record)
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        what = "; ".join(f"{k} {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
        more = f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
        raise BagError(f"--resume: {shown} was made with other settings, and its frames would "
                       f"not match the new ones: {what}{more}; rerun with the same settings, "
                       "or start over with --overwrite")
