"""`ovseg labelspace --prompts "a,b,c" -o DIR`: Hydra's label-space YAML and colour-map CSV for
the vocabulary (io/labelspace.py). The ids are those a node started with these prompts gives
them (1..N in order; see ~/label_map for a vocabulary changed at run time)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovseg_ros.core.vocabulary import Vocabulary, validate_prompts


def add_parser(sub) -> None:
    p = sub.add_parser("labelspace", help="write Hydra's label-space and colour-map files for "
                       "a vocabulary", description="Write Hydra's label-space YAML and "
                       "colour-map CSV for the classes you name, with the ids a node started "
                       "with these prompts gives them.",
                       epilog='example: ovseg labelspace --prompts "chair, person, door" -o '
                       'hydra_config/')
    p.add_argument("--prompts", required=True, help='comma-separated class names: "a,b,c"')
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--name", default="ovseg", help="file name prefix (default ovseg)")
    p.add_argument("--no-background", dest="background", action="store_false",
                   help="id 0 means unlabelled (the node's background:=false)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ovseg_ros.io.labelspace import write_label_space
    from ovseg_ros.settings.options import parse_prompts

    names = validate_prompts(parse_prompts(args.prompts), background=args.background)
    snap = Vocabulary(background=args.background).assign(names)
    space, colours = write_label_space(Path(args.output), snap.names, snap.ids,
                                       args.background, args.name)
    print(f"ovseg: {space} and {colours} ({len(snap.names)} classes + id 0)")
    return 0
