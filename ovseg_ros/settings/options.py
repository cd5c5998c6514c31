"""`ovseg` options derived from the settings schema: one option per core setting.

`--clip-weights` is the setting `clip_weights`, with its doc as help, its range or choices
checked by the setting itself, and its default; booleans get `--x / --no-x`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import replace

from ovseg_ros.core.config import RANDOM, KeyframeConfig, SegmenterConfig
from ovseg_ros.core.settings import ConfigError, Setting, from_values, settings_of
from ovseg_ros.objects.config import ObjectsConfig


def flag(s: Setting) -> str:
    return "--" + s.name.replace("_", "-")


def _parser_for(s: Setting):
    def parse(text: str):
        try:
            return s.parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = s.kind.__name__  # argparse names the type in some messages
    return parse


def help_text(s: Setting) -> str:
    extra = "; ".join(x for x in (s.constraints, f"default {s.format(s.default)}") if x)
    return f"{s.doc} ({extra})".replace("%", "%%")


def add_setting_options(parser: argparse.ArgumentParser, settings: Iterable[Setting],
                        aliases: dict[str, str] | None = None) -> None:
    """One option per setting; `aliases` adds extra option strings (name -> '--x')."""
    aliases = aliases or {}
    for s in settings:
        names = [flag(s)] + ([aliases[s.name]] if s.name in aliases else [])
        if s.kind is bool:
            parser.add_argument(*names, dest=s.name, action=argparse.BooleanOptionalAction,
                                default=s.default, help=help_text(s))
        else:
            parser.add_argument(*names, dest=s.name, type=_parser_for(s),
                                default=s.default, metavar=s.name.upper(), help=help_text(s))


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The Segmenter's settings: model, weights, device, precision, inference."""
    group = parser.add_argument_group("model and inference")
    add_setting_options(group, settings_of(SegmenterConfig))


def add_keyframe_options(parser: argparse.ArgumentParser) -> None:
    """CLIP-DIY keyframe settings (run synchronously on the chosen frames)."""
    group = parser.add_argument_group("CLIP-DIY keyframes")
    add_setting_options(group, settings_of(KeyframeConfig))


def config_from_args(args: argparse.Namespace) -> SegmenterConfig:
    return from_values(SegmenterConfig, vars(args))


def keyframes_from_args(args: argparse.Namespace) -> KeyframeConfig:
    """Keyframes computed and fused on their own frame: a file has no frame rate to keep up
    with, and results must not depend on how long CLIP-DIY took."""
    return replace(from_values(KeyframeConfig, vars(args)), asynchronous=False)


def parse_prompts(text: str) -> list[str]:
    return [p for p in (s.strip() for s in text.split(",")) if p]


def build_pipeline(cfg: SegmenterConfig, keyframes: KeyframeConfig | None = None):
    from ovseg_ros.core import FramePipeline, Segmenter

    return FramePipeline(Segmenter(cfg), keyframes or KeyframeConfig(asynchronous=False))


def load_pipeline(cfg: SegmenterConfig, random_fallback: bool,
                  keyframes: KeyframeConfig | None = None):
    """(FramePipeline, used random weights); with `random_fallback`, unavailable weights become
    random ones after one line on stderr that says so."""
    from ovseg_ros.core import WeightsError

    try:
        return build_pipeline(cfg, keyframes), False
    except WeightsError as exc:
        if not random_fallback:
            raise
        print(f"ovseg: real weights unavailable ({exc}); running on SEEDED RANDOM weights: "
              "the labels are meaningless.", file=sys.stderr)
        return build_pipeline(replace(cfg, clip_weights=RANDOM, heads=RANDOM), keyframes), True


def add_objects_options(parser: argparse.ArgumentParser) -> None:
    """The objects' settings (instances, tracks, 3D boxes; --objects turns them on)."""
    group = parser.add_argument_group("objects")
    add_setting_options(group, settings_of(ObjectsConfig))


def objects_from_args(args: argparse.Namespace) -> ObjectsConfig:
    return from_values(ObjectsConfig, vars(args))
