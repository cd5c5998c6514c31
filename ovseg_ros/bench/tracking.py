"""The `tracking` section: track ids on generated sequences with ground truth, scored with
py-motmetrics (MOT Challenge's CLEAR MOT and ID metrics: IDF1, ID switches, MOTA).

The label images of `tracking_scenes` go through the same two steps as a camera's frames
(`find_instances` with the default settings, then a `Tracker`); each instance's box is matched
to the ground-truth boxes by IoU >= 0.5 (`iou_distances`, motmetrics' rule).
Runs, all on the same sequences:

* clean: every frame, the tracker as shipped (mask overlap);
* drops: 20 % of the frames never reach the tracker (chosen by the seed), the rest keep their
  stamps, as when the node drops frames; the dropped frames are not scored;
* boxes, boxes_drops: the tracker with box overlap instead of mask overlap (the measured choice);
* same_class: a sequence where two objects of one class cross (their regions merge while
  they touch): a known limit of instances from labels, reported, not a target;
* bytetrack, bytetrack_drops: supervision's ByteTrack (a maintained implementation; in
  supervision up to 0.26, which needs matplotlib) on the same instances, when it is
  installed; else the run says so.

Targets (doc/objects.md): clean IDF1 >= 0.95 with no ID switch, drops IDF1 >= 0.9.
Metrics are deterministic (no timing), so tests assert them on a short sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ovseg_ros.objects import Tracker, find_instances

from .tracking_scenes import CLASSES, Frame, SceneSpec, generate

METRICS = ("idf1", "idp", "idr", "num_switches", "mota", "motp", "num_false_positives",
           "num_misses", "num_objects", "num_unique_objects", "num_frames", "mostly_tracked",
           "num_fragmentations")
TARGETS = {"clean": {"idf1": 0.95, "num_switches": 0}, "drops": {"idf1": 0.9}}

# (track ids (N,), boxes (N, 4) x0 y0 x1 y1) of one frame from a tracker under test.
TrackFn = Callable[[Frame], tuple[np.ndarray, np.ndarray]]


def ours(masks: bool = True, min_area: float = 0.001) -> TrackFn:
    tracker = Tracker(masks=masks)

    def track(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        inst = find_instances(frame.labels, frame.confidence, CLASSES, min_area)
        return tracker.update(inst, frame.stamp), inst.boxes
    return track


def bytetrack(fps: float, max_age_s: float = 2.0) -> TrackFn | str:
    """supervision's ByteTrack on our instances' boxes and scores, with the same lost-track
    time as ours; the reason when it cannot be imported."""
    try:
        import supervision as sv

        tracker = sv.ByteTrack(lost_track_buffer=int(round(max_age_s * 30)),
                               frame_rate=int(round(fps)))  # its buffer is in 30 fps frames
    except (ImportError, AttributeError) as exc:
        return f"not run: supervision with ByteTrack (<= 0.26) not importable ({exc})"

    def track(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        inst = find_instances(frame.labels, frame.confidence, CLASSES)
        det = sv.Detections(xyxy=inst.boxes.astype(float).reshape(-1, 4),
                            confidence=np.array([i.score for i in inst.instances], float),
                            class_id=np.array([i.class_id for i in inst.instances], int))
        out = tracker.update_with_detections(det)
        return out.tracker_id.astype(int), out.xyxy
    return track


def dropped(count: int, share: float, seed: int) -> set[int]:
    """Indices of the frames a run drops (never the first)."""
    rng = np.random.default_rng(seed + 1000)
    return {i for i in range(1, count) if rng.random() < share}


def score(frames: Sequence[Frame], track: TrackFn, skip: set[int] = frozenset()
          ) -> dict[str, Any]:
    """Run `track` over the frames not in `skip` and score them."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    t0 = time.perf_counter()
    for frame in frames:
        if frame.index in skip:
            continue
        ids, boxes = track(frame)
        gt_ids = sorted(frame.truth)
        gt = np.array([_xywh(frame.truth[g]) for g in gt_ids], float).reshape(-1, 4)
        hyp = np.array([_xywh(b) for b in boxes], float).reshape(-1, 4)
        acc.update(gt_ids, [int(i) for i in ids], iou_distances(gt, hyp))
    seconds = time.perf_counter() - t0
    summary = mm.metrics.create().compute(acc, metrics=list(METRICS), name="run")
    out = {k: _plain(k, summary[k].iloc[0]) for k in METRICS}
    out["seconds_per_frame"] = seconds / max(out["num_frames"], 1)
    return out


def iou_distances(gt: np.ndarray, hyp: np.ndarray, max_distance: float = 0.5) -> np.ndarray:
    """1 - IoU of (G, 4) and (H, 4) x, y, w, h boxes, NaN (no match) above `max_distance`:
    motmetrics' `distances.iou_matrix` rule, which NumPy 2 cannot run in motmetrics 1.4.0
    (it calls the removed np.asfarray)."""
    if gt.size == 0 or hyp.size == 0:
        return np.empty((len(gt), len(hyp)))
    lo = np.maximum(gt[:, None, :2], hyp[None, :, :2])
    hi = np.minimum(gt[:, None, :2] + gt[:, None, 2:], hyp[None, :, :2] + hyp[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    union = np.prod(gt[:, 2:], axis=1)[:, None] + np.prod(hyp[:, 2:], axis=1)[None] - inter
    dist = 1.0 - inter / union
    dist[dist > max_distance] = np.nan
    return dist


def _xywh(box: Sequence[float]) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def _plain(key: str, value: Any) -> float | int:
    return int(value) if key.startswith(("num_", "mostly")) else float(value)


def bench_tracking(frames: int = 300, seed: int = 0, size: tuple[int, int] = (480, 640),
                   drop_share: float = 0.2) -> dict[str, Any]:
    """Every run of the module docstring on sequences of `frames` frames of `size` (H, W)."""
    spec = SceneSpec(width=size[1], height=size[0], frames=frames, seed=seed)
    clean = generate(spec)
    skip = dropped(frames, drop_share, seed)
    runs = {"clean": score(clean, ours()),
            "drops": score(clean, ours(), skip),
            "boxes": score(clean, ours(masks=False)),
            "boxes_drops": score(clean, ours(masks=False), skip)}
    for name, frames_skipped in (("bytetrack", set()), ("bytetrack_drops", skip)):
        other = bytetrack(spec.fps)
        runs[name] = other if isinstance(other, str) else score(clean, other, frames_skipped)
    hard = generate(SceneSpec(width=size[1], height=size[0], frames=frames, seed=seed,
                              same_class_crossings=True))
    runs["same_class"] = score(hard, ours())
    met = {name: all(_meets(runs[name], k, v) for k, v in want.items())
           for name, want in TARGETS.items()}
    return {"frames": frames, "seed": seed, "size": list(size), "drop_share": drop_share,
            "dropped_frames": len(skip), "fps": spec.fps, "classes": CLASSES,
            "tracker": {"masks": True, "max_age_frames": Tracker().max_age_frames,
                        "max_age_s": Tracker().max_age_s, "min_iou": Tracker().min_iou},
            "runs": runs, "targets": TARGETS, "targets_met": met}


def _meets(run: dict[str, Any], key: str, want: float) -> bool:
    return run[key] <= want if key == "num_switches" else run[key] >= want


def markdown_lines(sec: dict[str, Any]) -> list[str]:
    """The section as a markdown table (report.markdown appends it)."""
    h, w = sec["size"]
    lines = ["", f"Tracking on generated sequences ({sec['frames']} frames of {w}x{h}, seed "
             f"{sec['seed']}, {sec['fps']:g} fps stamps; drops: {sec['dropped_frames']} frames "
             f"= {100 * sec['drop_share']:.0f}% left out), scored with py-motmetrics:", "",
             "| run | IDF1 | ID switches | MOTA | misses | false positives | ms per frame |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in sec["runs"].items():
        if isinstance(r, str):
            lines.append(f"| {name} | {r} | | | | | |")
            continue
        lines.append(f"| {name} | {r['idf1']:.3f} | {r['num_switches']} | {r['mota']:.3f} | "
                     f"{r['num_misses']} | {r['num_false_positives']} | "
                     f"{1e3 * r['seconds_per_frame']:.2f} |")
    met = ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in sec["targets_met"].items())
    lines += ["", f"Targets (clean IDF1 >= 0.95 and no ID switch; drops IDF1 >= 0.9): {met}."]
    return lines
