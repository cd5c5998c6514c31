"""The core objects that the node's parameter values describe (ROS-free; imports torch)."""

from __future__ import annotations

from typing import Any

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.clipdiy import ClipDiyConfig
from ovseg_ros.core.pipeline import FramePipeline, KeyframeConfig


def build_pipeline(values: dict[str, Any]) -> FramePipeline:
    """Segmenter and FramePipeline from parameter values (loads the weights)."""
    cfg = SegmenterConfig(
        model=values["model"], clip_weights=values["clip_weights"], heads=values["heads"],
        heads_sha256=values["heads_sha256"] or None, cache_dir=values["cache_dir"] or None,
        device=values["device"], precision=values["precision"], mode=values["mode"],
        input_size=values["input_size"], background=values["background"],
        threshold=values["threshold"], max_prompts=values["max_prompts"])
    return FramePipeline(Segmenter(cfg), keyframe_config(values))


def keyframe_config(values: dict[str, Any]) -> KeyframeConfig:
    """Map the keyframe parameters onto the core's KeyframeConfig (asynchronous in the node)."""
    every_n, every_s = values["keyframe_every_n"], values["keyframe_every_s"]
    half_life, unit = values["prior_half_life_frames"], "frames"
    if values["prior_half_life_s"] > 0:
        half_life, unit = values["prior_half_life_s"], "seconds"
    return KeyframeConfig(
        enabled=bool(values["keyframes"] or every_n > 0 or every_s > 0),
        every_n_frames=every_n, every_s=every_s,
        on_prompt_change=values["keyframe_on_prompt_change"], asynchronous=True,
        fusion_weight=values["keyframe_fusion_weight"],
        prior=half_life > 0, prior_half_life=half_life or 1.0, prior_half_life_unit=unit,
        clip_diy=ClipDiyConfig(model=values["keyframe_model"],
                               weights=values["keyframe_weights"]))
