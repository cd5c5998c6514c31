"""`ovseg bag INPUT -o OUTPUT`: a recorded bag in, the same bag plus the node's outputs out.
`ovseg bag IN1 IN2 ... -o OUTDIR` (or --list FILE, or a folder of bags): one output per bag,
here (`--shard I/N` for job arrays) or on a Ray cluster (`--ray [ADDRESS]`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ovseg_ros.bag import BagError
from ovseg_ros.bag.options import add_arguments, job_from_args, settings_from_args

DESCRIPTION = (
    "Label recorded data offline with the node's own frame path: a rosbag2 (MCAP or sqlite3) "
    "in, the same bag plus what the node publishes for each frame (labels, confidence, label "
    "map, with --depth-topic the labelled cloud) out. Several bags (or --list FILE, or a "
    "folder of bags): one output per bag, here, split over jobs with --shard I/N, or on a Ray "
    "cluster with --ray.")
EPILOG = """examples:
  ovseg bag recording/ -o labelled/ --prompts "person, chair, door"
  ovseg bag runs/ -o labelled_runs/ --shard 0/4       the first of four jobs
  ovseg bag runs/ -o labelled_runs/ --ray --workers 2"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bag", help="segment a rosbag2/MCAP bag (or many) into a labelled bag",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(handler=run_command)
    return p


def run_command(args: argparse.Namespace) -> int:
    """The parsed `ovseg bag` command; `args.argv`: the command line as given, whose options
    the Ray workers get."""
    return run(args, args.argv[args.argv.index("bag") + 1:])


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
