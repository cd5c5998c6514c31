"""`ovseg segment INPUT --prompts "a,b,c"` and `ovseg demo`.

Writes, per frame: <name>_labels.png (label ids, 16-bit when ids exceed 255), <name>_overlay.png
(colour blend with a legend) and <name>.json (id -> name map and per-class statistics); with
--query, <name>_query<k>.png per phrase (relevance, 16-bit) and their scores in the JSON.
`ovseg labelspace` writes Hydra's label-space files (cli/labelspace.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ovseg_ros.bag import BagError
from ovseg_ros.cli.options import (
    add_keyframe_options,
    add_model_options,
    add_setting_options,
    config_from_args,
    keyframes_from_args,
    load_pipeline,
    parse_prompts,
)
from ovseg_ros.core import ConfigError, DeviceError, VocabularyError, WeightsError
from ovseg_ros.core.query import relevance_maps, validate_phrases
from ovseg_ros.io.media import samples_dir
from ovseg_ros.node.config import BY_NAME

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


def run_segment(args: argparse.Namespace, random_fallback: bool) -> int:
    from tqdm import tqdm

    from ovseg_ros.io.media import iter_frames, write_png
    from ovseg_ros.viz import overlay

    frames = iter_frames(args.input)  # raises MediaError before any model is loaded
    cfg = config_from_args(args)
    pipeline, is_random = load_pipeline(cfg, random_fallback, keyframes_from_args(args))
    runtime = pipeline.segmenter.runtime
    log.info("compute: %s; chosen by %s", runtime.describe(), runtime.reason or "the settings")
    ids = pipeline.set_prompts(parse_prompts(args.prompts))
    queries = getattr(args, "query", [])
    if queries:  # refused (QueryError) before any frame is processed
        validate_phrases(queries, pipeline.segmenter.token_count)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, np.ndarray] = {}
    names: list[str] = []
    show_bar = frames.kind != "image"
    with frames:
        for i, frame in enumerate(tqdm(frames, total=frames.total, disable=not show_bar,
                                       unit="frame", desc="ovseg")):
            res = pipeline.process(frame.rgb, stamp=float(i))
            write_png(out / f"{frame.name}_labels.png",
                      res.labels if max(res.class_ids) > 255 else res.labels.astype(np.uint8))
            legend = [(cid, name) for cid, name in zip(res.class_ids, res.class_names,
                                                       strict=True)]
            write_png(out / f"{frame.name}_overlay.png",
                      overlay(frame.rgb, res.labels, args.overlay_alpha, legend))
            report = {
                "image": frame.path or frame.name, "size": list(res.labels.shape),
                "random_weights": is_random, "keyframe": res.keyframe,
                "label_ids": {name: cid for cid, name in legend},
                "id_0": "background" if cfg.background else "unlabelled",
                "classes": [asdict(s) for s in res.stats],
                "timings_s": res.timings,
            }
            if queries:
                report["queries"] = write_queries(out, frame.name, pipeline.segmenter, res,
                                                  queries)
            (out / f"{frame.name}.json").write_text(json.dumps(report, indent=2))
            if args.save_scores:
                scores[frame.name] = res.patch_probs
                names.append(frame.name)
    pipeline.close()
    if frames.skipped:
        log.warning("skipped %d unreadable images: %s", frames.skipped, frames.skipped_paths)
    if args.save_scores:
        save_scores(Path(args.save_scores), scores, names, res.class_ids, res.class_names)
    print(f"ovseg: {len(names) if args.save_scores else i + 1} frames -> {out} "
          f"(ids: {json.dumps(ids)})")
    return 0


def write_queries(out: Path, name: str, segmenter, res, phrases: list[str]) -> list[dict]:
    """<name>_query<k>.png (relevance x 65535, 16-bit grey) per phrase; their summaries."""
    from ovseg_ros.io.media import write_png

    summary = []
    for k, pm in enumerate(relevance_maps(segmenter, res, phrases)):
        path = out / f"{name}_query{k}.png"
        write_png(path, np.round(pm.relevance * 65535.0).astype(np.uint16))
        summary.append({"phrase": pm.phrase, "file": path.name, "score": pm.score,
                        "peak_uv": list(pm.peak), "class_id": pm.class_id})
    return summary


def save_scores(path: Path, scores: dict[str, np.ndarray], names: list[str],
                class_ids: tuple[int, ...], class_names: tuple[str, ...]) -> None:
    """One image: patch_probs (C, h, w). Several: patch_probs (N, C, h, w) when all sizes agree,
    else one key per frame, patch_probs/<name>."""
    arrays: dict[str, np.ndarray] = {"class_ids": np.array(class_ids),
                                     "class_names": np.array(class_names),
                                     "frame_names": np.array(names)}
    shapes = {a.shape for a in scores.values()}
    if len(scores) == 1:
        arrays["patch_probs"] = next(iter(scores.values()))
    elif len(shapes) == 1:
        arrays["patch_probs"] = np.stack([scores[n] for n in names])
    else:
        arrays.update({f"patch_probs/{n}": scores[n] for n in names})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


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
