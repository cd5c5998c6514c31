"""The `ovseg segment` and `ovseg demo` sub-commands: their options and the handlers that hand
the parsed arguments to cli/segment.py, imported (with the model) only when one of them runs."""

from __future__ import annotations

import argparse

from ovseg_ros.settings.options import (
    add_keyframe_options,
    add_model_options,
    add_objects_options,
    add_setting_options,
)
from ovseg_ros.settings.parameters import BY_NAME

DEMO_PROMPTS = "person, cat, cup, rocket, grass, sky, building, table"
SEGMENT_EPILOG = """examples:
  ovseg segment photo.jpg --prompts "chair, person, door handle" -o out/
  ovseg segment drive.mp4 --prompts "car, road, person" --keyframe-every-n 10
  ovseg segment frames/ --prompts "cup, bottle, chair" --objects
writes per frame: NAME_labels.png (label ids), NAME_overlay.png (colours and a legend) and
NAME.json (id -> name and per-class statistics); with --objects also NAME_instances.json
(COCO results: RLE masks, boxes, scores, track ids across the frames of a folder or video)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    seg = sub.add_parser("segment", help="segment an image, a folder of images or a video into "
                         "label images", description="Segment an image, a folder of images or "
                         "a video into the classes you name.", epilog=SEGMENT_EPILOG,
                         formatter_class=fmt)
    seg.add_argument("input", help="image file, folder of images, or video file")
    seg.add_argument("--prompts", required=True, help='comma-separated class names: "a,b,c"')
    seg.add_argument("-o", "--output", default="ovseg_out", help="output folder")
    add_setting_options(seg, [BY_NAME["overlay_alpha"]], aliases={"overlay_alpha": "--alpha"})
    seg.add_argument("--save-scores", metavar="FILE.npz", default=None,
                     help="store patch-level probabilities (key patch_probs)")
    seg.add_argument("--query", action="append", default=[], metavar="PHRASE",
                     help="also write each frame's relevance image for PHRASE (repeatable; "
                          "the vocabulary is not changed)")
    seg.add_argument("--random-fallback", action="store_true",
                     help="when real weights cannot be had, say so and use seeded random ones")
    add_model_options(seg)
    add_keyframe_options(seg)
    add_objects_options(seg)
    seg.set_defaults(handler=run_segment)

    demo = sub.add_parser("demo", help="segment the shipped sample images (no camera, no ROS)",
                          description="Segment the shipped sample images (samples/) into an "
                          "output folder. Without the real weights it says so and runs on "
                          "seeded random weights: the labels are then meaningless.",
                          epilog="example: ovseg demo -o ovseg_demo/", formatter_class=fmt)
    demo.add_argument("-o", "--output", default="ovseg_demo", help="output folder")
    demo.add_argument("--prompts", default=DEMO_PROMPTS,
                      help=f'comma-separated class names (default "{DEMO_PROMPTS}")')
    add_model_options(demo)
    add_keyframe_options(demo)
    add_objects_options(demo)
    demo.set_defaults(handler=run_demo)


def run_segment(args: argparse.Namespace) -> int:
    from ovseg_ros.cli.segment import run_segment as run

    return run(args, random_fallback=args.random_fallback)


def run_demo(args: argparse.Namespace) -> int:
    from ovseg_ros.cli.segment import run_segment as run
    from ovseg_ros.io.media import samples_dir

    args.input, args.save_scores = str(samples_dir()), None
    args.overlay_alpha = BY_NAME["overlay_alpha"].default
    return run(args, random_fallback=True)
