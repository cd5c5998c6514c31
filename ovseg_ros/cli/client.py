"""`ovseg prompts|query|param|watch`: talk to a running segmentation node without ros2cli
(the default install has no `ros2` command). Each is an rclpy client (cli/node_session.py) that
prints one line per answer:

    ovseg prompts set "person, chair"      ~/set_prompts
    ovseg prompts get                      ~/get_prompts
    ovseg query "red mug"                  ~/query against the latest frame
    ovseg param set threshold 0.3          <node>/set_parameters (typed by the settings schema)
    ovseg param get threshold              <node>/get_parameters
    ovseg watch [-n N]                     the latest ~/segmentation summary (N of them; 0: all)
    ovseg console                          a browser page on the node (cli/console/)

`--node /ovseg` (the default) picks the node; each command waits up to `--timeout` (30 s) for
it to appear, as a node started a moment ago needs a few seconds. Exit codes: 0 done, 1 no node
answered (one line, no traceback), 2 the node refused (its reason printed). rclpy is imported
only when one of these runs, so the other `ovseg` commands work where ROS is not installed.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from ovseg_ros.cli.node_session import (
    ANSWER_TIMEOUT_S,
    FIND_TIMEOUT_S,
    NoAnswer,
    NodeSession,
    RosMissing,
)

NO_ANSWER, REFUSED = 1, 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node", default="/ovseg", help="the node's name (default /ovseg; with a "
                   "namespace /robot1/ovseg)")
    p.add_argument("--timeout", type=float, default=FIND_TIMEOUT_S, metavar="S",
                   help=f"how long to wait for the node to appear (default {FIND_TIMEOUT_S:g} "
                        "s: a node started a moment ago needs a few seconds); its answer is "
                        f"awaited {ANSWER_TIMEOUT_S:g} s, or this long when longer (a node "
                        "loading its model answers once it has)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The client sub-commands; `handler` (this module's run) runs the parsed command, which
    `client_run` names."""
    prompts = sub.add_parser("prompts", help="get or set a running node's vocabulary",
                             description="Get or set the classes a running node segments.",
                             epilog='example: ovseg prompts set "person, chair, cup"')
    psub = prompts.add_subparsers(dest="action", required=True)
    pset = psub.add_parser("set", help="replace the vocabulary (~/set_prompts)")
    pset.add_argument("prompts", help='comma-separated class names: "person, chair"')
    pget = psub.add_parser("get", help="print the vocabulary (~/get_prompts)")
    for p in (pset, pget):
        _common(p)
    pset.set_defaults(client_run=prompts_set, handler=run)
    pget.set_defaults(client_run=prompts_get, handler=run)

    query = sub.add_parser("query", help="phrases against a running node's latest frame "
                           "(~/query; the vocabulary is not changed)",
                           description="Where in the running node's latest frame each phrase "
                           "is (relevance peak, mask, 3D point with depth) and, with the node's "
                           "objects on, which objects match it best; the vocabulary is not "
                           "changed. Needs a frame segmented first.",
                           epilog='example: ovseg query "red mug" "door handle"')
    query.add_argument("phrases", nargs="+", metavar="PHRASE")
    query.add_argument("--camera", default="", help="with several cameras: which one")
    query.add_argument("--threshold", type=float, default=0.0,
                       help="mask threshold on the relevance in (0, 1] (0: the node's 0.5)")
    query.add_argument("--objects", type=int, default=3, metavar="N",
                       help="print the N best-matching objects per phrase (objects on; "
                            "default 3)")
    _common(query)
    query.set_defaults(client_run=run_query, handler=run)

    param = sub.add_parser("param", help="get or set a running node's parameter",
                           description="Get or set a running node's parameter; dynamic ones "
                           "apply at once (doc/parameters.md lists them).",
                           epilog="example: ovseg param set threshold 0.3")
    asub = param.add_subparsers(dest="action", required=True)
    aset = asub.add_parser("set", help="set a parameter (typed as the node declares it)")
    aset.add_argument("name")
    aset.add_argument("value", help="the value; a list as YAML ([a, b]) or comma-separated")
    aget = asub.add_parser("get", help="print a parameter's value")
    aget.add_argument("name")
    for p in (aset, aget):
        _common(p)
    aset.set_defaults(client_run=param_set, handler=run)
    aget.set_defaults(client_run=param_get, handler=run)

    watch = sub.add_parser("watch", help="print the latest segmentation summary of a running "
                           "node (~/segmentation)",
                           description="One line per segmented frame of a running node: the "
                           "classes present, largest first, with timing and dropped frames.",
                           epilog="example: ovseg watch -n 0   (until Ctrl-C)")
    watch.add_argument("-n", "--count", type=int, default=1,
                       help="how many frames to print (default 1; 0: until Ctrl-C)")
    watch.add_argument("--camera", default="", help="with several cameras: which one")
    watch.add_argument("--wait", type=float, default=30.0, metavar="S",
                       help="how long to wait for a frame once the node is found (default 30)")
    _common(watch)
    watch.set_defaults(client_run=run_watch, handler=run)

    from ovseg_ros.cli.console import command as console

    console.add_parser(sub)
    sub.choices["console"].set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the parsed client command: one line per answer on stdout; errors one line on
    stderr."""
    try:
        return args.client_run(args)
    except (NoAnswer, RosMissing) as exc:
        print(f"ovseg: {exc}", file=sys.stderr)
        return NO_ANSWER
    except ValueError as exc:  # a bad --node or parameter value, before anything is sent
        print(f"ovseg: error: {exc}", file=sys.stderr)
        return REFUSED


# ---- the commands -------------------------------------------------------------------------------

def vocabulary_line(names: list[str], ids: list[int], background: bool | None = None) -> str:
    pairs = ", ".join(f"{i} {n}" for n, i in zip(names, ids, strict=True))
    zero = "" if background is None else \
        f"; 0 {'background' if background else 'unlabelled'}"
    return f"{len(names)} classes: {pairs}{zero}"


def prompts_set(args: argparse.Namespace) -> int:
    from ovseg_ros.srv import SetPrompts

    names = [p for p in (s.strip() for s in args.prompts.split(",")) if p]
    with NodeSession(args.node, args.timeout) as session:
        res = session.call(SetPrompts, "set_prompts", SetPrompts.Request(prompts=names))
    if not res.success:
        print(f"ovseg: {session.node_name} refused the prompts: {res.message}", file=sys.stderr)
        return REFUSED
    print(f"{session.node_name}: {vocabulary_line(list(res.class_names), list(res.class_ids))}")
    return 0


def prompts_get(args: argparse.Namespace) -> int:
    from ovseg_ros.srv import GetPrompts

    with NodeSession(args.node, args.timeout) as session:
        res = session.call(GetPrompts, "get_prompts", GetPrompts.Request())
    print(f"{session.node_name}: "
          f"{vocabulary_line(list(res.class_names), list(res.class_ids), res.background)}")
    return 0


def answer_line(answer: Any) -> str:
    """One ~/query answer (ovseg_ros/QueryAnswer) as a line."""
    pixels = answer.mask.width * answer.mask.height
    covered = sum(1 for b in bytes(answer.mask.data) if b) / pixels if pixels else 0.0
    where = (f"id {answer.class_id}, in the vocabulary" if answer.in_vocabulary
             else "not in the vocabulary")
    text = (f"{answer.phrase!r} ({where}): score {answer.score:.3f} at u={answer.u} "
            f"v={answer.v}, mask {100 * covered:.1f}% of the frame")
    if answer.point_count:
        p = answer.point
        text += f", at x={p.x:.2f} y={p.y:.2f} z={p.z:.2f} m ({answer.point_count} points)"
    return text


def run_query(args: argparse.Namespace) -> int:
    from ovseg_ros.srv import Query

    req = Query.Request(phrases=list(args.phrases), camera=args.camera,
                        threshold=float(args.threshold))
    with NodeSession(args.node, args.timeout) as session:
        res = session.call(Query, "query", req)
    if not res.success:
        print(f"ovseg: {session.node_name} refused the query: {res.message}", file=sys.stderr)
        return REFUSED
    stamp = res.header.stamp.sec + res.header.stamp.nanosec * 1e-9
    for answer in res.answers:
        print(f"{answer_line(answer)} (frame {stamp:.3f}, {res.header.frame_id or '-'})")
        for match in list(answer.objects)[:args.objects]:
            print(f"  {object_line(match)}")
    return 0


def object_line(match: Any) -> str:
    """One object of a ~/query answer (ovseg_ros/ObjectMatch) as a line."""
    return (f"object {match.instance_id} ({match.class_name} #{match.track_id}): relevance "
            f"{match.relevance:.3f}, cosine {match.cosine:.3f}, box x={match.x} y={match.y} "
            f"{match.width}x{match.height}")


def typed_value(name: str, text: str) -> Any:
    """A parameter value from its text: typed by the node's settings schema (so 0 for a
    double is 0.0, as ROS requires), else read as YAML like ros2 param set does."""
    import yaml

    from ovseg_ros.core.settings import ConfigError
    from ovseg_ros.settings.parameters import BY_NAME

    s = BY_NAME.get(name)
    if s is None:
        return yaml.safe_load(text)
    if s.kind is list and not text.strip().startswith("["):
        text = "[" + ", ".join(repr(p.strip()) for p in text.split(",") if p.strip()) + "]"
    try:
        return s.parse(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def param_set(args: argparse.Namespace) -> int:
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    value = typed_value(args.name, args.value)
    with NodeSession(args.node, args.timeout) as session:
        msg = Parameter(args.name, value=value).to_parameter_msg()
        res = session.call(SetParameters, "set_parameters", SetParameters.Request(
            parameters=[msg]))
    result = res.results[0]
    if not result.successful:
        print(f"ovseg: {session.node_name} refused {args.name}={value!r}: {result.reason}",
              file=sys.stderr)
        return REFUSED
    print(f"{session.node_name}: {args.name} = {value!r}")
    return 0


def param_get(args: argparse.Namespace) -> int:
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    with NodeSession(args.node, args.timeout) as session:
        res = session.call(GetParameters, "get_parameters",
                           GetParameters.Request(names=[args.name]))
    if not res.values or res.values[0].type == ParameterType.PARAMETER_NOT_SET:
        print(f"ovseg: {session.node_name} has no parameter {args.name!r}", file=sys.stderr)
        return REFUSED
    value = parameter_value_to_python(res.values[0])
    if isinstance(value, tuple) or type(value).__module__ == "array":
        value = list(value)
    print(f"{session.node_name}: {args.name} = {value!r}")
    return 0


def summary_line(msg: Any) -> str:
    """One ~/segmentation message (ovseg_ros/Segmentation) as a line: the classes present,
    largest first, then timing and health."""
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    present = sorted((c for c in msg.classes if c.pixel_fraction > 0),
                     key=lambda c: -c.pixel_fraction)
    classes = ", ".join(
        f"{c.class_name} {100 * c.pixel_fraction:.0f}%" + (
            f" at {c.median_point.z:.2f} m" if c.valid_points and
            not math.isnan(c.median_point.z) else "")
        for c in present) or "no class"
    extra = " keyframe" if msg.keyframe else ""
    return (f"frame {stamp:.3f} ({msg.header.frame_id or '-'}), vocabulary "
            f"v{msg.vocabulary_version}{extra}: {classes}; inference {msg.inference_ms:.0f} ms, "
            f"latency {msg.latency_ms:.0f} ms, {msg.frames_dropped} dropped")


def run_watch(args: argparse.Namespace) -> int:
    from ovseg_ros.msg import Segmentation

    if args.count < 0:
        raise ValueError("--count must be >= 0")
    topic = f"{args.camera.strip('/')}/segmentation" if args.camera else "segmentation"
    with NodeSession(args.node, args.timeout) as session:
        for msg in session.messages(Segmentation, topic, args.count, args.wait):
            print(summary_line(msg), flush=True)
    return 0
