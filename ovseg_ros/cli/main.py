"""`ovseg segment INPUT --prompts "a,b,c"` and `ovseg demo`.

Writes, per frame: <name>_labels.png (label ids, 16-bit when ids exceed 255), <name>_overlay.png
(colour blend with a legend) and <name>.json (id -> name map and per-class statistics).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ovseg_ros.core import DeviceError, SegmenterConfig, VocabularyError, WeightsError
from ovseg_ros.core.weights import RANDOM

log = logging.getLogger("ovseg")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DEMO_PROMPTS = "person, cat, cup, rocket, grass, sky, building, table"


def add_model_options(p: argparse.ArgumentParser) -> None:
    d = SegmenterConfig()
    p.add_argument("--model", default=d.model, help="open_clip ViT name (default %(default)s)")
    p.add_argument("--clip-weights", default=d.clip_weights,
                   help="open_clip pretrained tag, a local weights file, or 'random'")
    p.add_argument("--heads", default=d.heads,
                   help="CLIP-DINOiser head checkpoint: local path, https URL, or 'random'")
    p.add_argument("--heads-sha256", default=None, help="expected sha256 of the head checkpoint")
    p.add_argument("--cache-dir", default=None, help="download cache (default ~/.cache/ovseg_ros)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--mode", default="whole", choices=["whole", "slide"],
                   help="whole image, or the paper's 448 sliding windows with stride 224")
    p.add_argument("--input-size", type=int, default=d.input_size,
                   help="short side before inference; 0 = no resizing (default %(default)s)")
    p.add_argument("--no-background", action="store_true",
                   help="no implicit background class (id 0 then means 'below --threshold')")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="pixels less confident than this get id 0")
    p.add_argument("--keyframe-every", type=int, default=0,
                   help="run CLIP-DIY every N frames and fuse it (0 = off)")


def config_from_args(args: argparse.Namespace) -> SegmenterConfig:
    return SegmenterConfig(
        model=args.model, clip_weights=args.clip_weights, heads=args.heads,
        heads_sha256=args.heads_sha256, cache_dir=args.cache_dir, device=args.device,
        precision=args.precision, mode=args.mode, input_size=args.input_size,
        background=not args.no_background, threshold=args.threshold,
    )


def parse_prompts(text: str) -> list[str]:
    return [p for p in (s.strip() for s in text.split(",")) if p]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovseg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="segment an image, a folder of images or a video")
    seg.add_argument("input", help="image file, folder of images, or video file")
    seg.add_argument("--prompts", required=True, help='comma-separated class names: "a,b,c"')
    seg.add_argument("-o", "--output", default="ovseg_out", help="output folder")
    seg.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    seg.add_argument("--save-scores", metavar="FILE.npz", default=None,
                     help="store patch-level probabilities (key patch_probs)")
    seg.add_argument("--random-fallback", action="store_true",
                     help="when real weights cannot be had, say so and use seeded random ones")
    add_model_options(seg)
    demo = sub.add_parser("demo", help="segment the shipped sample images")
    demo.add_argument("-o", "--output", default="ovseg_demo", help="output folder")
    demo.add_argument("--prompts", default=DEMO_PROMPTS)
    add_model_options(demo)
    from ovseg_ros.eval import cli as eval_cli  # imports this module's option helpers

    eval_cli.add_parser(sub)
    return parser


def build_pipeline(cfg: SegmenterConfig, keyframe_every: int = 0):
    from ovseg_ros.core import Segmenter
    from ovseg_ros.core.pipeline import FramePipeline, KeyframeConfig

    if keyframe_every < 0:
        raise ValueError("--keyframe-every must be >= 0")
    # Synchronous keyframes: a file has no frame rate to keep up with, and results must not
    # depend on how long CLIP-DIY took.
    keyframes = KeyframeConfig(enabled=keyframe_every > 0, every_n_frames=max(keyframe_every, 1),
                               asynchronous=False)
    return FramePipeline(Segmenter(cfg), keyframes)


def load_pipeline(cfg: SegmenterConfig, random_fallback: bool, keyframe_every: int = 0):
    """Build the FramePipeline; with `random_fallback`, unavailable weights become random ones
    after one line on stderr that says so."""
    try:
        return build_pipeline(cfg, keyframe_every=keyframe_every), False
    except WeightsError as exc:
        if not random_fallback:
            raise
        print(f"ovseg: real weights unavailable ({exc}); running on SEEDED RANDOM weights: "
              "the labels are meaningless.", file=sys.stderr)
        cfg.clip_weights, cfg.heads = RANDOM, RANDOM
        return build_pipeline(cfg, keyframe_every=keyframe_every), True


def run_segment(args: argparse.Namespace, random_fallback: bool) -> int:
    from tqdm import tqdm

    from ovseg_ros.io.media import iter_frames, write_png
    from ovseg_ros.viz import overlay

    frames = iter_frames(args.input)  # raises MediaError before any model is loaded
    cfg = config_from_args(args)
    pipeline, is_random = load_pipeline(cfg, random_fallback, args.keyframe_every)
    ids = pipeline.set_prompts(parse_prompts(args.prompts))
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
                      overlay(frame.rgb, res.labels, args.alpha, legend))
            report = {
                "image": frame.path or frame.name, "size": list(res.labels.shape),
                "random_weights": is_random, "keyframe": res.keyframe,
                "label_ids": {name: cid for cid, name in legend},
                "id_0": "background" if cfg.background else "unlabelled",
                "classes": [asdict(s) for s in res.stats],
                "timings_s": res.timings,
            }
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        args.input, args.alpha, args.save_scores = str(SAMPLES), 0.5, None
    try:
        if args.command == "eval":
            from ovseg_ros.eval import cli as eval_cli

            return eval_cli.run(args)
        return run_segment(args, random_fallback=args.command == "demo" or args.random_fallback)
    except (WeightsError, DeviceError, VocabularyError, ValueError) as exc:
        print(f"ovseg: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # media errors and the like: one line, not a traceback
        if args.verbose:
            raise
        print(f"ovseg: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
