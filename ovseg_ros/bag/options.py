"""`ovseg bag`'s options and what they build: the argument parser (model and segmentation
options from the settings schema, as `ovseg segment`'s), the BagSettings, and the BagJob with
its model loaded. Shared by the command (bag/cli.py) and the Ray actors (bag/fleet.py), which
rebuild the job from the driver's command line."""

from __future__ import annotations

import argparse

from ovseg_ros.bag import BagError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ovseg_ros.frame.outputs import FRAME_TABLE
    from ovseg_ros.frame.types import DISTROS, default_distro
    from ovseg_ros.settings.options import (
        add_keyframe_options,
        add_model_options,
        add_objects_options,
        add_setting_options,
    )
    from ovseg_ros.settings.parameters import BY_NAME, DEFAULT_PROMPTS

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
    optional = [o for o in FRAME_TABLE if o.optional]
    io.add_argument("--with", dest="with_outputs", action="append", default=[], metavar="NAME",
                    choices=[o.name for o in optional],
                    help="also write this optional output (repeat for several): " + "; ".join(
                        f"{o.name}: {o.doc}" for o in optional))
    io.add_argument("--overlay", action="store_true", help="the same as --with overlay")
    io.add_argument("--features", action="store_true",
                    help="the same as --with features (ovseg_ros/FeatureMap: the dense "
                         "per-patch features 3D mappers fuse, as the node's ~/features)")
    io.add_argument("--no-copy", action="store_true",
                    help="write only the outputs, not the input's messages")
    io.add_argument("--distro", default=default_distro(), choices=DISTROS,
                    help="the ROS 2 release that reads the output: its rosbag2 metadata "
                         "(humble 5, iron 7, jazzy/kilted 9) and typestore, also for input "
                         "bags without message definitions (default: this environment's)")
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
                       help="run on a Ray cluster; bare --ray as ray.init(): the cluster of "
                            "RAY_ADDRESS, else the one `ray start` started on this machine, "
                            "else a new local one (says which); 'local': always a new one")
    fleet.add_argument("--workers", type=int, default=1, help="Ray actors (model replicas)")
    fleet.add_argument("--gpus-per-worker", type=float, default=0.0)
    fleet.add_argument("--cpus-per-worker", type=float, default=1.0,
                       help="Ray CPUs per actor (Ray then sets its threads to this; --threads "
                            "sets torch's)")
    add_model_options(p)
    add_keyframe_options(p)
    add_objects_options(p)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ovseg bag")
    add_arguments(p)
    return p


def settings_from_args(args: argparse.Namespace):
    from ovseg_ros.core.settings import check_config, from_values
    from ovseg_ros.frame.outputs import BY_NAME as OUTPUTS
    from ovseg_ros.settings.options import objects_from_args, parse_prompts
    from ovseg_ros.settings.parameters import NodeConfig

    from .process import BagSettings

    if args.batch < 1:
        raise BagError("--batch must be >= 1")
    outputs = tuple(dict.fromkeys([*args.with_outputs, *(["overlay"] if args.overlay else []),
                                   *(["features"] if args.features else [])]))
    for name in outputs:
        if "features" in OUTPUTS[name].needs and args.mode == "slide":
            raise BagError(f"--with {name} needs --mode whole (slide mode stitches windows "
                           "and keeps no features)")
    node = from_values(NodeConfig, {**vars(args), "prompts": parse_prompts(args.prompts),
                                    "use_depth": bool(args.depth_topic)})
    check_config(node)
    return BagSettings(node=node, image_topics=tuple(args.image_topic),
                       depth_topics=tuple(args.depth_topic),
                       info_topics=tuple(args.camera_info_topic), ns=args.ns,
                       copy=not args.no_copy, outputs=outputs, objects=objects_from_args(args),
                       batch=args.batch,
                       start=args.start, end=args.end, distro=args.distro)


def job_from_args(args: argparse.Namespace):
    """The BagJob of these options: the model loaded, the prompts set."""
    from ovseg_ros.core.tiny import CONFIGS, register_tiny
    from ovseg_ros.settings.options import config_from_args, keyframes_from_args, load_pipeline

    from .process import BagJob

    settings = settings_from_args(args)
    if args.model in CONFIGS:  # the benchmarks' and tests' seeded tiny models, in any process
        register_tiny(name=args.model)
    pipeline, random = load_pipeline(config_from_args(args), args.random_fallback,
                                     keyframes_from_args(args))
    pipeline.set_prompts(list(settings.node.prompts))
    return BagJob(pipeline, settings)


def job_from_argv(argv: list[str]):
    """A Ray actor's BagJob, from the command line the driver was given."""
    return job_from_args(parser().parse_args(argv))
