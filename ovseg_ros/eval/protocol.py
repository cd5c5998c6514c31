"""The paper's evaluation protocol, pinned per dataset, and the Segmenter settings it implies.

Source: the authors' evaluation configs (github.com/wysoczanska/clip_dinoiser, commit a954aae6,
segmentation/configs/_base_/datasets/*.py and main_eval.py). Every dataset, Cityscapes and
ADE20k included, uses the same test pipeline: resize with kept aspect to scale (2048, 448)
(short side 448 unless the long side would exceed 2048), then mmsegmentation's slide inference
with 448 x 448 crops at stride 224. The objectness background rule ("FOUND") is applied for
VOC21 and COCO-Object only (main_eval.py sets apply_found for "voc" and "coco_object");
Context60's class 0 "background" is an ordinary text prompt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ovseg_ros.core.config import DELTA, GAMMA, SegmenterConfig

from .classes import CLASS_LISTS

IGNORE_INDEX = 255

# mIoU (%) of CLIP-DINOiser with its published heads, from the paper's main table.
PAPER_MIOU: dict[str, float] = {
    "voc21": 62.1, "context60": 32.4, "coco_object": 34.8, "voc20": 80.9,
    "context59": 35.9, "coco_stuff": 24.6, "cityscapes": 31.7, "ade20k": 20.0,
}
DATASETS: tuple[str, ...] = tuple(PAPER_MIOU)  # the paper's column order
TITLES: dict[str, str] = {
    "voc21": "VOC21", "context60": "Context60", "coco_object": "COCO-Object", "voc20": "VOC20",
    "context59": "Context59", "coco_stuff": "COCO-Stuff", "cityscapes": "Cityscapes",
    "ade20k": "ADE20k",
}


@dataclass(frozen=True)
class Protocol:
    """How one benchmark is evaluated.

    background_rule: class 0 is "background", handled as the Segmenter's implicit background
      (the "background" text embedding plus the objectness rule), so it is no prompt of its own.
    has_background: the benchmark counts a background class (index 0) in its mIoU.
    """

    dataset: str
    num_classes: int
    has_background: bool
    background_rule: bool
    short_side: int = 448
    long_side: int = 2048
    mode: str = "slide"
    window: int = 448
    stride: int = 224
    ignore_index: int = IGNORE_INDEX
    precision: str = "fp32"  # the authors' evaluation ran without autocast
    threshold: float = 0.0

    @property
    def paper_miou(self) -> float:
        return PAPER_MIOU[self.dataset]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"paper_miou": self.paper_miou}


def _protocol(name: str, has_background: bool = False, background_rule: bool = False
              ) -> Protocol:
    return Protocol(name, len(CLASS_LISTS[name]), has_background, background_rule)


PROTOCOLS: dict[str, Protocol] = {
    "voc21": _protocol("voc21", has_background=True, background_rule=True),
    "context60": _protocol("context60", has_background=True),
    "coco_object": _protocol("coco_object", has_background=True, background_rule=True),
    "voc20": _protocol("voc20"),
    "context59": _protocol("context59"),
    "coco_stuff": _protocol("coco_stuff"),
    "cityscapes": _protocol("cityscapes"),
    "ade20k": _protocol("ade20k"),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return PROTOCOLS[name]


def segmenter_config(cfg: SegmenterConfig, protocol: Protocol) -> SegmenterConfig:
    """The user's configuration `cfg` with the protocol's background handling: on for the
    benchmarks that use the rule unless the user switched it off (`cfg.background` False),
    off for all others."""
    return dataclasses.replace(cfg, background=protocol.background_rule and cfg.background)


def deviations(cfg: SegmenterConfig, protocol: Protocol, precision: str) -> list[str]:
    """Settings of `cfg` (as given to the Segmenter) and the resolved `precision` that differ
    from the paper's protocol, one readable line each; empty for a faithful run."""
    from ovseg_ros.core.tiling import LONG_TO_SHORT  # torch: here, not when `ovseg` parses

    if round(protocol.short_side * LONG_TO_SHORT) != protocol.long_side:
        raise AssertionError("the Segmenter's long-side cap no longer matches the protocol")
    checks = [("mode", cfg.mode, protocol.mode), ("input_size", cfg.input_size,
              protocol.short_side), ("window", cfg.window, protocol.window),
              ("stride", cfg.stride, protocol.stride), ("threshold", cfg.threshold,
              protocol.threshold), ("gamma", cfg.gamma, GAMMA), ("delta", cfg.delta, DELTA),
              ("precision", precision, protocol.precision)]
    out = [f"{name} {value} (paper: {paper})" for name, value, paper in checks if value != paper]
    if protocol.background_rule and not cfg.background:
        out.append("background rule off (paper: on; 'background' becomes a text prompt)")
    return out
