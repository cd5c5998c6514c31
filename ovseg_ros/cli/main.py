"""The `ovseg` command line: the top-level parser, the sub-commands' registry and the one-line
error handling. Parsing imports no model module (torch, open_clip, onnxruntime) and no rclpy:
`--help` and argument errors answer at once (test/cli/test_cli_imports.py)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# The sub-commands, in the order `ovseg --help` lists them, and the module that registers each:
# its add_parser(sub) adds its sub-command(s) and sets `handler`, the function that runs the
# parsed command. At import time the modules load only the standard library and the settings
# schema; a handler imports what its command needs. A new sub-command is one line here.
SUBCOMMANDS = {
    "segment": "ovseg_ros.cli.segment_command",
    "demo": "ovseg_ros.cli.segment_command",
    "bag": "ovseg_ros.bag.cli",
    "eval": "ovseg_ros.eval.cli",
    "labelspace": "ovseg_ros.cli.labelspace",
    "weights": "ovseg_ros.cli.weights",
    "prompts": "ovseg_ros.cli.client",  # prompts, query, param, watch: a running node
    "query": "ovseg_ros.cli.client",
    "param": "ovseg_ros.cli.client",
    "watch": "ovseg_ros.cli.client",
    "console": "ovseg_ros.cli.client",  # a browser page on a running node (cli/console/)
}

DESCRIPTION = """\
Open-vocabulary semantic segmentation: name the classes, get label images. Runs on images,
videos and recorded bags without ROS, and talks to a running ovseg_ros node."""
EPILOG = """examples:
  ovseg demo                                      segment the shipped sample images
  ovseg segment photo.jpg --prompts "chair, person" -o out/
  ovseg bag recording/ -o labelled/ --prompts "person, door"
  ovseg weights --download                        fetch the model files (about 600 MB)
  ovseg prompts set "person, chair, cup"          change a running node's classes
  ovseg watch                                     the running node's latest frame
  ovseg console                                   a browser page: http://127.0.0.1:8765/

`ovseg COMMAND --help` shows a command's options and an example; the package's README and
doc/cli.md say more."""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command; of only the one `argv` names, when it names one."""
    parser = argparse.ArgumentParser(prog="ovseg", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log each step (INFO) and show the traceback of an unexpected "
                             "error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((a for a in argv or [] if not a.startswith("-")), "")
    modules = [SUBCOMMANDS[named]] if named in SUBCOMMANDS else SUBCOMMANDS.values()
    for module in dict.fromkeys(modules):  # each once, in order
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--ros-args" in argv:  # `ros2 launch` appends ROS arguments (`console:=true`)
        argv = argv[:argv.index("--ros-args")]
    args = build_parser(argv).parse_args(argv)
    args.argv = argv  # the command line as given (`ovseg bag` hands it to its Ray workers)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except Exception as exc:
        if isinstance(exc, refused_types()):  # a setting, input or prompt the user can fix
            print(f"ovseg: error: {exc}", file=sys.stderr)
            return 2
        if args.verbose:
            raise
        # media errors and the like: one line, not a traceback
        print(f"ovseg: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def refused_types() -> tuple[type[Exception], ...]:
    """The errors that mean "refused: fix the input" (exit code 2). Imported only once an
    error happened, so the node clients' start-up does not load the settings schema."""
    from ovseg_ros.bag import BagError
    from ovseg_ros.core.errors import DeviceError, WeightsError
    from ovseg_ros.core.settings import ConfigError
    from ovseg_ros.core.vocabulary import VocabularyError

    return (WeightsError, DeviceError, VocabularyError, ConfigError, ValueError, BagError)


if __name__ == "__main__":
    sys.exit(main())
