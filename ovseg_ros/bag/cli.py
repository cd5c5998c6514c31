"""`ovseg bag INPUT -o OUTPUT`: a recorded bag in, the same bag plus the node's outputs out.
`ovseg bag IN1 IN2 ... -o OUTDIR` (or --list FILE, or a folder of bags): one output per bag,
here (`--shard I/N` for job arrays) or on a Ray cluster (`--ray [ADDRESS]`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ovseg_ros.bag import BagError

DESCRIPTION = __doc__


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bag", help="segment a rosbag2/MCAP bag (or many) into a labelled bag",
                       description=DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ovseg_ros.cli.options import add_keyframe_options, add_model_options, add_setting_options
    from ovseg_ros.node.config import BY_NAME, DEFAULT_PROMPTS

    from .types import DISTROS, default_distro

    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="rosbag2 folder (MCAP or sqlite3), .mcap file, ROS 1 .bag, or a folder "
                        "of bags")
    p.add_argument("-o", "--output", required=True,
                   help="the output bag (one input) or the folder of outputs (several)")
    p.add_argument("--list", metavar="FILE", help="more inputs, one path a line")
    p.add_argument("--prompts", default=", ".join(DEFAULT_PROMPTS),
                   help='comma-separated class names: "a,b,c" (default the node\'s)')
    io = p.add_argument_group("topics")
    io.add_argument("--image-topic", action="append", default=[], metavar="T",
                    help="image topic to segment (repeat for several cameras; default: the "
                         "bag's only image topic)")
    io.add_argument("--depth-topic", action="append", default=[], metavar="T",
                    help="registered depth per image topic (with --camera-info-topic): points "
                         "and markers")
    io.add_argument("--camera-info-topic", action="append", default=[], metavar="T")
    io.add_argument("--ns", default="/ovseg", help="output namespace (the node's name)")
    io.add_argument("--overlay", action="store_true", help="also write the colour overlay")
    io.add_argument("--no-copy", action="store_true",
                    help="write only the outputs, not the input's messages")
    io.add_argument("--distro", default=default_distro(), choices=DISTROS,
                    help="typestore for bags without message definitions (default: this "
                         "environment's)")
    add_setting_options(io, [BY_NAME[n] for n in ("overlay_alpha", "publish_confidence_mono8",
                                                  "depth_slop_s", "points_stride",
                                                  "max_image_pixels")])
    run = p.add_argument_group("run")
    run.add_argument("--batch", type=int, default=1, metavar="N",
                     help="frames per forward pass (without keyframes)")
    run.add_argument("--start", type=float, default=None,
                     help="seconds from the bag's start, or an absolute stamp")
    run.add_argument("--end", type=float, default=None)
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    run.add_argument("--resume", action="store_true",
                     help="continue OUTPUT.partial from an interrupted run")
    run.add_argument("--random-fallback", action="store_true",
                     help="when real weights cannot be had, use seeded random ones (says so)")
    run.add_argument("--summary-json", metavar="FILE", help="the summary as JSON")
    fleet = p.add_argument_group("many bags")
    fleet.add_argument("--shard", metavar="I/N", help="every N-th bag from the I-th (0-based)")
    fleet.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                       help="run on a Ray cluster (auto: RAY_ADDRESS or the local one; "
                            "'local': start one here)")
    fleet.add_argument("--workers", type=int, default=1, help="Ray actors (model replicas)")
    fleet.add_argument("--gpus-per-worker", type=float, default=0.0)
    fleet.add_argument("--cpus-per-worker", type=float, default=1.0,
                       help="Ray CPUs per actor (Ray then sets its threads to this; --threads "
                            "sets torch's)")
    add_model_options(p)
    add_keyframe_options(p)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ovseg bag")
    add_arguments(p)
    return p


def settings_from_args(args: argparse.Namespace):
    from ovseg_ros.cli.main import parse_prompts
    from ovseg_ros.core.settings import check_config, from_values
    from ovseg_ros.node.config import NodeConfig

    from .process import BagSettings

    if args.batch < 1:
        raise BagError("--batch must be >= 1")
    node = from_values(NodeConfig, {**vars(args), "prompts": parse_prompts(args.prompts),
                                    "use_depth": bool(args.depth_topic)})
    check_config(node)
    return BagSettings(node=node, image_topics=tuple(args.image_topic),
                       depth_topics=tuple(args.depth_topic),
                       info_topics=tuple(args.camera_info_topic), ns=args.ns,
                       copy=not args.no_copy, overlay=args.overlay, batch=args.batch,
                       start=args.start, end=args.end, distro=args.distro)


def job_from_args(args: argparse.Namespace):
    """The BagJob of these options: the model loaded, the prompts set."""
    from ovseg_ros.bench.tiny import TINY, register_tiny
    from ovseg_ros.cli.main import load_pipeline
    from ovseg_ros.cli.options import config_from_args, keyframes_from_args

    from .process import BagJob

    settings = settings_from_args(args)
    if args.model == TINY:  # the benchmarks' and tests' seeded tiny model, in any process
        register_tiny()
    pipeline, random = load_pipeline(config_from_args(args), args.random_fallback,
                                     keyframes_from_args(args))
    pipeline.set_prompts(list(settings.node.prompts))
    return BagJob(pipeline, settings)


def job_from_argv(argv: list[str]):
    """A Ray actor's BagJob, from the command line the driver was given."""
    return job_from_args(_parser().parse_args(argv))


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from . import fleet
    from .progress import Progress

    settings_from_args(args)  # option errors before any model is loaded
    bags = fleet.expand_inputs(args.inputs, args.list)
    if not bags:
        raise BagError("no input bag given")
    many = len(bags) > 1 or args.list or args.shard or args.ray or \
        (len(args.inputs) == 1 and Path(args.inputs[0]).is_dir()
         and bags[0] != Path(args.inputs[0]))
    output = Path(args.output)
    if not many:
        return _run_one(args, bags[0], output)
    bags = fleet.shard(bags, args.shard)
    fleet.check_unique(bags, output)
    missing = [b for b in bags if not b.exists()]
    if missing:
        raise BagError(f"no such bag: {', '.join(map(str, missing))}")
    output.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    extra: dict = {}
    if args.ray:
        reports, extra = fleet.run_ray(
            args.ray, _worker_argv(argv), bags, output, workers=args.workers,
            gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
            overwrite=args.overwrite, progress=progress,
            total_frames=_count_frames(bags, args))
    else:
        job = job_from_args(args)
        reports = fleet.run_local(job.run, bags, output, progress, overwrite=args.overwrite)
    progress.close()
    print(fleet.summary_table(reports))
    summary = Path(args.summary_json) if args.summary_json else output / "ovseg_summary.json"
    fleet.write_json(summary, reports, extra)
    failed = [r for r in reports if r.status != "done"]
    print(f"ovseg bag: {len(reports) - len(failed)}/{len(reports)} bags done -> {output} "
          f"(summary {summary})")
    return 1 if failed else 0


def _run_one(args: argparse.Namespace, bag: Path, output: Path) -> int:
    from .progress import Progress
    from .sink import partial_path

    job = job_from_args(args)
    progress = Progress()
    try:
        report = job.run(bag, output, overwrite=args.overwrite, resume=args.resume,
                         progress=progress, total=progress.add_total)
    except KeyboardInterrupt as exc:
        progress.close()
        rep = getattr(exc, "report", None)
        done = rep.total if rep else 0
        print(f"ovseg bag: interrupted after {done} frames; the partial bag (readable) is "
              f"{partial_path(output)}: --resume continues it", file=sys.stderr)
        return 130
    progress.close()
    _print_summary(report)
    if args.summary_json:
        from . import fleet

        fleet.write_json(Path(args.summary_json), [report], {})
    return 0


def _print_summary(r) -> None:
    per = ", ".join(f"{t}: {n}" for t, n in r.frames.items())
    print(f"ovseg bag: {r.total} frames ({per}) in {r.seconds:.1f} s, {r.fps:.2f} frames/s "
          f"-> {r.output}")
    if r.resumed_frames:
        print(f"  {r.resumed_frames} frames carried over from the interrupted run")
    for reason, n in r.skipped.items():
        print(f"  skipped {n}: {reason}")
    if r.broken:
        print(f"  input {r.broken}; everything before it was processed")


def _count_frames(bags: list[Path], args: argparse.Namespace) -> int:
    from .source import IMAGE_TYPES, InputBag
    from .topics import default_image_topics

    total = 0
    for b in bags:
        try:
            bag = InputBag(b, args.distro)
        except BagError:
            continue
        topics = set(args.image_topic) or set(
            default_image_topics(bag.topics(IMAGE_TYPES), args.depth_topic))
        total += bag.count(topics)
        bag.close()
    return total


def _worker_argv(argv: list[str]) -> list[str]:
    """The driver's options for the actors (their model and settings), with absolute paths
    in place of relative ones; inputs and fleet options do not matter to an actor."""
    out = []
    for a in argv:
        out.append(os.path.abspath(a) if a and not a.startswith("-") and os.path.exists(a)
                   else a)
    return out
