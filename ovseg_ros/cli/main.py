"""The `ovseg` command line: `ovseg segment` and `ovseg demo` (cli/segment.py), `ovseg bag`
(bag/), `ovseg eval` (eval/), `ovseg labelspace` (Hydra's label-space files, cli/labelspace.py).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ovseg_ros.bag import BagError
from ovseg_ros.core import ConfigError, DeviceError, VocabularyError, WeightsError
from ovseg_ros.io.media import samples_dir
from ovseg_ros.settings.options import (
    add_keyframe_options,
    add_model_options,
    add_setting_options,
    config_from_args,
    parse_prompts,
)
from ovseg_ros.settings.parameters import BY_NAME

log = logging.getLogger("ovseg")
# Re-exported for sub-commands that add the same options (ovseg_ros.eval).
__all__ = ["add_model_options", "config_from_args", "main"]
DEMO_PROMPTS = "person, cat, cup, rocket, grass, sky, building, table"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="segment an image, a folder of images or a video")
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
    demo = sub.add_parser("demo", help="segment the shipped sample images")
    demo.add_argument("-o", "--output", default="ovseg_demo", help="output folder")
    demo.add_argument("--prompts", default=DEMO_PROMPTS)
    add_model_options(demo)
    add_keyframe_options(demo)
    from ovseg_ros.eval import cli as eval_cli  # adds its sub-command

    eval_cli.add_parser(sub)
    from ovseg_ros.cli import labelspace

    labelspace.add_parser(sub)
    from ovseg_ros.bag import cli as bag_cli

    bag_cli.add_parser(sub)
    from ovseg_ros.cli import client, weights  # set `handler`: the function that runs them

    weights.add_parser(sub)
    client.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        args.input, args.save_scores = str(samples_dir()), None
        args.overlay_alpha = BY_NAME["overlay_alpha"].default
    try:
        if (handler := getattr(args, "handler", None)) is not None:
            return handler(args)
        if args.command == "labelspace":
            from ovseg_ros.cli import labelspace

            return labelspace.run(args, parse_prompts(args.prompts))
        if args.command == "eval":
            from ovseg_ros.eval import cli as eval_cli

            return eval_cli.run(args)
        if args.command == "bag":
            from ovseg_ros.bag import cli as bag_cli

            return bag_cli.run(args, argv[argv.index("bag") + 1:])
        from ovseg_ros.cli.segment import run_segment

        return run_segment(args, random_fallback=args.command == "demo" or args.random_fallback)
    except (WeightsError, DeviceError, VocabularyError, ConfigError, ValueError,
            BagError) as exc:
        print(f"ovseg: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # media errors and the like: one line, not a traceback
        if args.verbose:
            raise
        print(f"ovseg: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
