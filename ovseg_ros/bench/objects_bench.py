"""The `objects` section: what objects add to a frame, measured beside the frame in one run.

At one camera size (640x480 by default) with a vocabulary of 250 names, interleaved round by
round:

* frame: `Segmenter.segment` of the frame (its inference, the baseline);
* objects: on that frame's result, everything the objects add: instances (`find_instances`),
  track ids (`Tracker.update`), 3D boxes from registered depth (`boxes_3d`, synthetic depth at
  the frame's size), one CLIP vector per instance (`instance_vectors`), and the messages
  (~/instances, ~/detections, ~/detections_3d, ~/detection_markers, the instance
  FeatureImage) built and serialised as the frame step does;
* objects_scene: the same on a generated label image with known objects (the tracking
  benchmark's scene): seeded random weights label a frame in random blobs, so this is the
  realistic count of objects.

The ratio objects / frame is the share objects add (target: at most 5%).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ovseg_ros.core import Segmenter
from ovseg_ros.geometry.synthetic import synthetic_depth
from ovseg_ros.objects import (
    ObjectsConfig,
    Tracker,
    boxes_3d,
    find_instances,
    instance_vectors,
)

from .images import sample_images
from .sections import CLASSES, EXTRA
from .timing import discard, interleave, paired_ratio, summarise
from .tracking_scenes import CLASSES as SCENE_CLASSES
from .tracking_scenes import SceneSpec, generate


def vocabulary(count: int) -> list[str]:
    """`count` distinct names: the realistic ones first, then numbered objects."""
    names = CLASSES + EXTRA
    return (names + [f"object {i}" for i in range(count - len(names))])[:count]


def _messages():
    from ovseg_ros.frame import object_messages as om
    from ovseg_ros.frame.builder import builder_for

    b = builder_for("kilted")
    header = b.header(0, 0, "camera")

    def build(frame, ids, boxes, vectors) -> None:
        for msg in (om.instances_image_msg(b, frame, header),
                    om.detections_2d_msg(b, frame, ids, header),
                    om.detections_3d_msg(b, frame, ids, boxes, header),
                    om.box_markers_msg(b, frame, ids, boxes, header),
                    om.instance_feature_image_msg(b, frame, vectors, header)):
            b.serialize(msg)
    return build


def _objects_variant(labels, confidence, names, features, depth, intr, cfg: ObjectsConfig):
    tracker = Tracker(cfg.track_max_age_frames, cfg.track_max_age_s, cfg.track_min_iou)
    build = _messages()
    clock = iter(range(1, 1 << 30))
    last: dict[str, int] = {}

    def run() -> dict[str, float]:
        t0 = time.perf_counter()
        frame = find_instances(labels, confidence, names, cfg.object_min_area,
                               cfg.object_close_gaps_px)
        t1 = time.perf_counter()
        ids = tracker.update(frame, 0.1 * next(clock))
        t2 = time.perf_counter()
        boxes = boxes_3d(frame.ids, len(frame), depth, intr, cfg.box_trim_percent,
                         cfg.box_min_points)
        t3 = time.perf_counter()
        vectors = instance_vectors(features, frame.ids, len(frame))
        t4 = time.perf_counter()
        build(frame, ids, boxes, vectors)
        t5 = time.perf_counter()
        last.update(instances=len(frame), boxes=len(boxes.boxes))
        return {"instances": t1 - t0, "tracks": t2 - t1, "boxes_3d": t3 - t2,
                "vectors": t4 - t3, "messages": t5 - t4}
    return run, last


def bench_objects(seg: Segmenter, size: tuple[int, int], reps: int, prompts: int = 250
                  ) -> dict[str, Any]:
    """One camera size (H, W) with `prompts` names; restores nothing (the caller resets the
    vocabulary)."""
    seg.set_prompts(vocabulary(prompts))
    rgb = sample_images(size, 1)[0]
    res = seg.segment(rgb)
    if res.features is None:
        return {"skipped": "the frame kept no features (mode 'slide')"}
    fake = synthetic_depth(rgb)
    depth = fake.depth_mm.astype(np.float32) / 1000.0
    depth[fake.depth_mm == 0] = np.nan
    cfg = ObjectsConfig(objects=True)
    names = dict(zip(res.class_ids, res.class_names, strict=True))
    model_run, model_count = _objects_variant(res.labels, res.confidence, names, res.features,
                                              depth, fake.intrinsics, cfg)
    scene = generate(SceneSpec(width=size[1], height=size[0], frames=1))[0]
    scene_run, scene_count = _objects_variant(scene.labels, scene.confidence, SCENE_CLASSES,
                                              res.features, depth, fake.intrinsics, cfg)
    samples = interleave({"frame": discard(seg.segment, rgb), "objects": model_run,
                          "objects_scene": scene_run}, reps, device=seg.runtime.device)
    t = {k: v["total"] for k, v in samples.items()}
    return {"size": list(size), "prompts": prompts,
            "classes_present": int(np.count_nonzero(np.bincount(res.labels.ravel())[1:])),
            "instances": model_count.get("instances", 0), "boxes": model_count.get("boxes", 0),
            "scene_instances": scene_count.get("instances", 0),
            "settings": {"object_min_area": cfg.object_min_area,
                         "box_trim_percent": cfg.box_trim_percent},
            "stages": summarise(samples),
            "ratios": {"objects_vs_frame": paired_ratio(t["objects"], t["frame"]),
                       "objects_scene_vs_frame": paired_ratio(t["objects_scene"], t["frame"])}}


def markdown_lines(sec: dict[str, Any]) -> list[str]:
    if "stages" not in sec:
        return [f"- objects: {sec.get('skipped')}"]
    h, w = sec["size"]
    st, r = sec["stages"], sec["ratios"]
    stages = ", ".join(f"{k} {1e3 * v['median']:.2f}" for k, v in st["objects"].items()
                       if k != "total")
    return [f"- objects, {w}x{h}, {sec['prompts']} names: instances, tracks, 3D boxes, vectors "
            f"and messages {1e3 * st['objects']['total']['median']:.1f} ms "
            f"({sec['instances']} instances of {sec['classes_present']} classes) = "
            f"{100 * r['objects_vs_frame']:.2f}% of the frame "
            f"({1e3 * st['frame']['total']['median']:.0f} ms, same run; ms: {stages}); on a "
            f"generated scene of {sec['scene_instances']} objects "
            f"{100 * r['objects_scene_vs_frame']:.2f}% (target <= 5%)."]
