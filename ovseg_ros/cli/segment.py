"""`ovseg segment INPUT --prompts "a,b,c"` (and `ovseg demo`): images, folders and videos
through the node's frame step, into files.

Writes, per frame: <name>_labels.png (label ids, 16-bit when ids exceed 255), <name>_overlay.png
(colour blend with a legend of the visible classes) and <name>.json (id -> name map and
per-class statistics); with --query, <name>_query<k>.png per phrase (relevance, 16-bit) and
their scores in the JSON; with --objects, <name>_instances.json: the frame's objects in COCO's
results format (objects/coco.py), with track ids that run across the frames of a folder or
video.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ovseg_ros.core.query import relevance_maps, validate_phrases
from ovseg_ros.frame.builder import builder_for
from ovseg_ros.frame.log import FrameLog
from ovseg_ros.frame.step import (
    BaseSink,
    FrameResult,
    Incoming,
    StepCamera,
    StepSettings,
    make_step,
)
from ovseg_ros.frame.types import default_distro
from ovseg_ros.settings.options import (
    config_from_args,
    keyframes_from_args,
    load_pipeline,
    objects_from_args,
    parse_prompts,
)

log = logging.getLogger("ovseg")


class FilesSink(BaseSink):
    """Writes each frame's label PNG, overlay PNG and JSON summary from the frame itself: it
    wants no message, so the step builds none."""

    def __init__(self, out: Path, background: bool, random_weights: bool,
                 queries: list[str], segmenter: Any, keep_scores: bool) -> None:
        self.out, self.background, self.random_weights = out, background, random_weights
        self.queries, self.segmenter, self.keep_scores = queries, segmenter, keep_scores
        self.media: Any = None  # the io.media.Frame being segmented
        self.scores: dict[str, np.ndarray] = {}  # --save-scores: patch probabilities by name
        self.last: FrameResult | None = None

    def frame_done(self, frame: FrameResult) -> None:
        from ovseg_ros.io.media import write_png

        res, name = frame.result, self.media.name
        big = max(res.class_ids, default=0) > 255
        write_png(self.out / f"{name}_labels.png", res.labels if big
                  else res.labels.astype(np.uint8))
        write_png(self.out / f"{name}_overlay.png", frame.overlay())
        report = {
            "image": self.media.path or name, "size": list(res.labels.shape),
            "random_weights": self.random_weights, "keyframe": res.keyframe,
            "label_ids": {n: cid for cid, n in zip(res.class_ids, res.class_names,
                                                   strict=True)},
            "id_0": "background" if self.background else "unlabelled",
            "classes": [dict(vars(s)) for s in res.stats],
            "timings_s": res.timings,
        }
        if self.queries:
            report["queries"] = write_queries(self.out, name, self.segmenter, res, self.queries)
        if frame.objects is not None and (found := frame.objects.found) is not None:
            from ovseg_ros.objects import coco_results

            results = coco_results(found.instances, found.track_ids, image_id=name)
            (self.out / f"{name}_instances.json").write_text(json.dumps(results))
            report["objects"] = len(results)
        (self.out / f"{name}.json").write_text(json.dumps(report, indent=2))
        if self.keep_scores:
            self.scores[name] = res.patch_probs
        self.last = frame


def run_segment(args: argparse.Namespace, random_fallback: bool) -> int:
    from tqdm import tqdm

    from ovseg_ros.io.media import iter_frames

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
    b = builder_for(default_distro())
    settings = StepSettings(max_image_pixels=2**62, overlay_alpha=args.overlay_alpha,
                            objects=objects_from_args(args))
    step = make_step(pipeline, [StepCamera("", str(args.input))], lambda: settings, b,
                     FrameLog(log))
    sink = FilesSink(out, cfg.background, is_random, queries, pipeline.segmenter,
                     bool(args.save_scores))
    names: list[str] = []
    count = 0
    with frames:
        for i, frame in enumerate(tqdm(frames, total=frames.total,
                                       disable=frames.kind == "image", unit="frame",
                                       desc="ovseg")):
            sink.media = frame
            step.run([("", Incoming.decoded(frame.rgb, float(i)))], sink)
            names.append(frame.name)
            count = i + 1
    pipeline.close()
    if frames.skipped:
        log.warning("skipped %d unreadable images: %s", frames.skipped, frames.skipped_paths)
    if args.save_scores and sink.last is not None:
        res = sink.last.result
        save_scores(Path(args.save_scores), sink.scores, names, res.class_ids, res.class_names)
    print(f"ovseg: {count} frames -> {out} (ids: {json.dumps(ids)})")
    return 0


def write_queries(out: Path, name: str, segmenter: Any, res: Any,
                  phrases: list[str]) -> list[dict]:
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
