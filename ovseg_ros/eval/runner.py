"""One evaluation run: a benchmark's validation images through the Segmenter, confusion
matrices accumulated and stored as each image finishes, scores and reports at the end."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.weights import file_sha256
from ovseg_ros.io.media import MediaError, read_image, write_png

from .classes import CLASS_LISTS, ClassList, read_class_file
from .datasets import LAYOUTS, DatasetError, Sample, list_samples, read_label
from .metrics import confusion, scores
from .prompts import build_mapping, to_class_indices
from .protocol import Protocol, deviations, get_protocol, segmenter_config
from .provenance import device_info, environment, weights_identity
from .report import build_metrics, write_reports
from .state import RunState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate and where the results go (the model settings are a SegmenterConfig)."""

    dataset: str
    root: Path
    output: Path
    limit: int | None = None  # the first N images of the split
    save_predictions: bool = False  # <output>/predictions/<id>.png in the dataset's indices
    class_names: Path | None = None  # a class-name file instead of the authors' list
    progress: bool = True  # the progress bar (stderr)


def _class_list(opts: EvalOptions, protocol: Protocol) -> tuple[ClassList, str]:
    if opts.class_names is None:
        return CLASS_LISTS[opts.dataset], "built-in (the authors' list, see doc/evaluation.md)"
    classes = read_class_file(opts.class_names, protocol.num_classes)
    return classes, f"{opts.class_names} (sha256 {file_sha256(Path(opts.class_names))})"


def _load(name: str, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    try:
        rgb = read_image(sample.image)
    except MediaError as exc:
        raise DatasetError(f"{name}: {exc}") from exc
    gt = read_label(name, sample)
    if gt.shape != rgb.shape[:2]:
        raise DatasetError(f"{name}: annotation {sample.label} is {gt.shape[1]}x{gt.shape[0]}, "
                           f"its image {sample.image} is {rgb.shape[1]}x{rgb.shape[0]}")
    return rgb, gt


def _prefetched(name: str, samples: list[Sample]
                ) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    """(sample, rgb, gt) in order, decoding the next image while the current one runs."""
    if not samples:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_load, name, samples[0])
        for i, sample in enumerate(samples):
            rgb, gt = pending.result()
            if i + 1 < len(samples):
                pending = pool.submit(_load, name, samples[i + 1])
            yield sample, rgb, gt


def _settings(opts: EvalOptions, protocol: Protocol, cfg: SegmenterConfig, seg: Segmenter,
              classes: ClassList, weights: dict[str, str]) -> dict:
    """Everything that decides the numbers; a resumed run must match it exactly."""
    return {
        "dataset": opts.dataset,
        "protocol": protocol.as_dict(),
        "classes": [list(c) for c in classes],
        "model": cfg.model,
        "weights": weights,
        "inference": {"mode": cfg.mode, "input_size": cfg.input_size, "window": cfg.window,
                      "stride": cfg.stride, "background": cfg.background,
                      "threshold": cfg.threshold, "gamma": cfg.gamma, "delta": cfg.delta},
        "precision": seg.runtime.precision,
        "device_type": seg.runtime.device.type,
        "backend": getattr(cfg, "backend", None),
    }


def run_evaluation(opts: EvalOptions, user_cfg: SegmenterConfig) -> dict:
    """Evaluate `opts.dataset` with the Segmenter configured by `user_cfg` under the paper's
    protocol, resuming from `opts.output` when it holds this run's progress.

    Writes <output>/metrics.json and <output>/results.md (and predictions when asked); returns
    the metrics dict. Raises DatasetError, ClassListError, ResumeError (all ValueError),
    WeightsError or DeviceError with a message that says what to fix.
    """
    from tqdm import tqdm

    protocol = get_protocol(opts.dataset)
    if opts.limit is not None and opts.limit < 1:
        raise ValueError("--limit must be at least 1")
    samples = list_samples(opts.dataset, opts.root)  # layout errors before the model loads
    selected = samples[: opts.limit] if opts.limit else samples
    classes, class_source = _class_list(opts, protocol)
    cfg = segmenter_config(user_cfg, protocol)
    mapping = build_mapping(classes, cfg.background)
    cfg = dataclasses.replace(cfg, max_prompts=max(cfg.max_prompts, len(mapping.prompts)))
    seg = Segmenter(cfg)
    table = mapping.lookup(seg.set_prompts(list(mapping.prompts)))
    weights = weights_identity(cfg)
    notes = deviations(cfg, protocol, seg.runtime.precision)
    if opts.class_names is not None:
        notes.append(f"class names from {opts.class_names} (paper: the authors' list)")
    settings = _settings(opts, protocol, cfg, seg, classes, weights)
    state = RunState(opts.output / "state", settings, environment(), protocol.num_classes)
    predictions = opts.output / "predictions"

    def needed(s: Sample) -> bool:  # a resumed run that now saves predictions redoes the rest
        return s.id not in state.done or (opts.save_predictions
                                          and not (predictions / f"{s.id}.png").is_file())

    todo = [s for s in selected if needed(s)]
    todo_ids = {s.id for s in todo}
    log.info("%s: %d images selected, %d done before; %s", opts.dataset, len(selected),
             len(selected) - len(todo), seg.runtime.describe())
    layout = LAYOUTS[opts.dataset]
    running = state.total([s.id for s in selected if s.id not in todo_ids])
    bar = tqdm(total=len(selected), initial=len(selected) - len(todo), unit="img",
               desc=f"eval {opts.dataset}", disable=not opts.progress, smoothing=0.1)
    started, model_s = time.perf_counter(), 0.0
    finished = 0
    try:
        for sample, rgb, gt in _prefetched(opts.dataset, todo):
            t0 = time.perf_counter()
            labels = seg.segment(rgb).labels
            model_s += time.perf_counter() - t0
            pred = to_class_indices(labels, table)
            matrix = confusion(gt, pred, protocol.num_classes)
            if opts.save_predictions:
                write_png(predictions / f"{sample.id}.png", layout.encode(pred))
            state.record(sample.id, matrix)
            running += matrix
            finished += 1
            bar.update(1)
            if finished % 10 == 0 or finished == len(todo):
                miou = scores(running)["mIoU"]
                bar.set_postfix(mIoU=f"{100 * miou:.2f}" if miou is not None else "-")
    finally:
        bar.close()
        state.close()
    elapsed = time.perf_counter() - started
    total = state.total([s.id for s in selected])
    timing = {"images_this_session": finished, "seconds_this_session": round(elapsed, 3),
              "images_per_s": round(finished / elapsed, 4) if finished and elapsed > 0 else None,
              "model_s_per_image": round(model_s / finished, 4) if finished else None}
    configuration = {
        "model": cfg.model, "clip_weights": cfg.clip_weights, "heads": cfg.heads, **weights,
        "protocol": protocol.as_dict(), "inference": settings["inference"],
        **device_info(seg), "backend": settings["backend"], "class_names": class_source,
        "prompts": len(mapping.prompts), "environments": state.environments,
    }
    metrics = build_metrics(
        dataset=opts.dataset, matrix=total, classes=classes, images=len(selected),
        split_images=len(samples), deviations=notes, configuration=configuration, timing=timing)
    write_reports(opts.output, metrics)
    return metrics
