"""The `query` section: a phrase query and the ~/features message against a frame's inference,
all measured in the same interleaved rounds.

- frame: `Segmenter.segment` of one frame (the query's baseline);
- query_cached: `relevance_maps` for one phrase whose text embedding is cached;
- query_new: the same for a phrase never seen before (its text encoding included);
- text_encode: one text-encoder call for a new name (what query_new may add);
- features_msg: the FeatureMap message of the frame (fp16 grid) and its ROS serialisation
  (numpy part only, when rclpy or the generated messages are missing).
"""

from __future__ import annotations

import itertools
from typing import Any

from ovseg_ros.core import Segmenter
from ovseg_ros.core.query import relevance_maps

from .images import sample_images
from .timing import interleave, paired_ratio, summarise


def _features_message(res) -> tuple[Any, str]:
    from ovseg_ros.core.features import LOGIT_SCALE
    from ovseg_ros.frame.builder import builder_for
    from ovseg_ros.frame.messages import FeatureSpace, feature_map_msg

    b = builder_for("kilted")
    space, header = FeatureSpace("bench", "bench", "bench"), b.header(0, 0, "")

    def full() -> None:
        b.serialize(feature_map_msg(b, res.features, header, space, LOGIT_SCALE))
    return full, "FeatureMap built and serialised (the frame step's builder, CDR)"


def bench_query(seg: Segmenter, size: tuple[int, int], reps: int) -> dict[str, Any]:
    rgb = sample_images(size, 1)[0]
    res = seg.segment(rgb)
    relevance_maps(seg, res, ["red mug"])  # cached from here on
    fresh = (f"red mug {k}" for k in itertools.count())
    names = (f"blue kettle {k}" for k in itertools.count())
    features_msg, how = _features_message(res)
    variants = {
        "frame": lambda: seg.segment(rgb),
        "query_cached": lambda: relevance_maps(seg, res, ["red mug"]),
        "query_new": lambda: relevance_maps(seg, res, [next(fresh)]),
        "text_encode": lambda: seg.text_cache.embed([next(names)]),
        "features_msg": features_msg,
    }
    samples = interleave(variants, reps, device=seg.runtime.device)
    t = {k: v["total"] for k, v in samples.items()}
    extra_new = [max(n - c, 0.0) for n, c in zip(t["query_new"], t["query_cached"], strict=False)]
    return {
        "size": list(size), "grid": list(res.features.grid), "dim": res.features.dim,
        "features_bytes_fp16": res.features.dim * res.features.grid[0] * res.features.grid[1] * 2,
        "features_msg": how,
        "stages": summarise(samples),
        "ratios": {
            "query_cached_vs_frame": paired_ratio(t["query_cached"], t["frame"]),
            "query_new_vs_frame": paired_ratio(t["query_new"], t["frame"]),
            "query_new_extra_vs_text_encode": paired_ratio(extra_new, t["text_encode"]),
            "features_msg_vs_frame": paired_ratio(t["features_msg"], t["frame"]),
        },
    }
