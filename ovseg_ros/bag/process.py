"""One bag through the node's frame path: every image frame decoded (`frames.decode_rgb`),
segmented (`FramePipeline.process_batch`), paired with depth (`DepthInput`, the node's
pairing) and turned into the node's messages (`camera.frame_messages`), serialized by rclpy.
The only difference from the live node is where the messages go: into a bag, at the input
message's bag time, in order, every frame (no latest-frame-wins).

Deterministic: the same input and settings give the same bytes. The Segmentation fields that
measure wall-clock time on the live node (inference_ms, latency_ms, frames_dropped) are 0
here; the run's timing is in the summary (`BagReport`).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image

from ovseg_ros.bag import BagError
from ovseg_ros.bag.sink import OutputBag, Topic, prepare_output, read_partial
from ovseg_ros.bag.source import IMAGE_TYPES, InputBag
from ovseg_ros.bag.topics import BagCamera, cameras_for, output_topics
from ovseg_ros.bag.types import default_distro
from ovseg_ros.io import ImageDecodeError
from ovseg_ros.node import messages as m
from ovseg_ros.node.camera import frame_messages
from ovseg_ros.node.config import NodeConfig
from ovseg_ros.node.diagnostics import Throttle
from ovseg_ros.node.features import FeatureSpace, feature_map_msg
from ovseg_ros.node.frames import decode_rgb

log = logging.getLogger("ovseg.bag")


@dataclass(frozen=True)
class BagSettings:
    """What `ovseg bag` does besides the model settings (those are the pipeline's)."""

    node: NodeConfig  # prompts, overlay_alpha, publish_confidence_mono8, depth, max_image_pixels
    image_topics: tuple[str, ...] = ()  # empty: the bag's one image topic
    depth_topics: tuple[str, ...] = ()  # one per image topic, or none
    info_topics: tuple[str, ...] = ()
    ns: str = "/ovseg"
    copy: bool = True
    overlay: bool = False
    features: bool = False  # also `features` (FeatureMap), as the node's ~/features
    batch: int = 1
    start: float | None = None  # seconds from the bag's start, or an absolute stamp (> 1e9)
    end: float | None = None
    distro: str = field(default_factory=default_distro)


@dataclass
class BagReport:
    """The summary of one bag."""

    input: str
    output: str
    status: str = "running"  # done | interrupted | failed
    frames: dict[str, int] = field(default_factory=dict)  # per image topic
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    seconds: float = 0.0
    error: str = ""
    broken: str = ""  # the input stopped early (truncated/corrupt): where and why
    resumed_frames: int = 0
    last_time_ns: int = 0
    attempts: int = 1  # a fleet retries a failed bag once
    worker_pid: int = 0  # the Ray actor that processed it

    @property
    def total(self) -> int:
        return sum(self.frames.values())

    @property
    def fps(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "status": self.status,
                "frames": self.frames, "skipped": self.skipped,
                "seconds": round(self.seconds, 3), "frames_per_s": round(self.fps, 3),
                "error": self.error, "broken": self.broken,
                "resumed_frames": self.resumed_frames, "attempts": self.attempts,
                "worker_pid": self.worker_pid}


@dataclass
class _Pending:
    cam: BagCamera
    time_ns: int
    msg: Any
    pair: Any


class BagJob:
    """Processes bags with one loaded FramePipeline (reused from bag to bag)."""

    def __init__(self, pipeline: Any, settings: BagSettings) -> None:
        self.pipeline, self.s = pipeline, settings
        self.keyframes = pipeline.config.enabled

    def run(self, input_path: Path, output: Path, *, overwrite: bool = False,
            resume: bool = False, fresh_partial: bool = False,
            progress: Callable[[int], None] | None = None,
            total: Callable[[int], None] | None = None) -> BagReport:
        """Write OUTPUT (via OUTPUT.partial). Raises BagError for unusable inputs; Ctrl-C
        (KeyboardInterrupt) closes the partial bag cleanly and is re-raised with the report
        in `exc.report`."""
        report = BagReport(str(input_path), str(output))
        t0 = time.perf_counter()
        bag = InputBag(input_path, self.s.distro)
        try:
            cams = cameras_for(bag, self.s, log, Throttle(5.0))
            old = prepare_output(output, overwrite, resume, fresh_partial)
            start_ns, stop_ns = self._slice(bag)
            image_topics = {c.image_topic for c in cams}
            if total is not None:
                total(bag.count(image_topics))
            with OutputBag(output, self.s.distro) as out:
                try:
                    topics = output_topics(out, cams, self.s)
                    self._labels_written = False
                    done = self._carry_over(old, out, cams, topics, report) if old else set()
                    self._loop(bag, out, cams, topics, done, start_ns, stop_ns, report,
                               progress)
                except KeyboardInterrupt as exc:
                    report.status = "interrupted"
                    report.seconds = time.perf_counter() - t0
                    out.close()
                    exc.report = report  # type: ignore[attr-defined]
                    raise
                report.broken = bag.broken
                out.finish(overwrite)
            if old is not None:
                import shutil

                shutil.rmtree(old, ignore_errors=True)
        finally:
            bag.close()
        report.status = "done"
        report.seconds = time.perf_counter() - t0
        return report

    # ---- the frame loop ---------------------------------------------------------------------

    def _loop(self, bag: InputBag, out: OutputBag, cams: list[BagCamera], topics: dict,
              done: set[tuple[str, int]], start_ns: int | None, stop_ns: int | None,
              report: BagReport, progress: Callable[[int], None] | None) -> None:
        by_image = {c.image_topic: c for c in cams}
        by_depth = {c.depth_topic: c for c in cams if c.depth is not None}
        by_info = {c.info_topic: c for c in cams if c.depth is not None}
        copies: dict[int, Topic] = {}
        slop_ns = int(self.s.node.depth_slop_s * 1e9)
        pending: collections.deque[_Pending] = collections.deque()
        report.frames = {c.image_topic: 0 for c in cams}
        for conn, t, raw in bag.messages():
            if self.s.copy:
                topic = copies.get(conn.id) or copies.setdefault(conn.id, bag.copy_topic(conn))
                out.write_raw(topic, t, raw)
            cam = by_image.get(conn.topic)
            try:
                if cam is not None:
                    if (start_ns is not None and t < start_ns) or \
                            (stop_ns is not None and t > stop_ns):
                        continue
                    if (cam.image_topic, t) in done:
                        continue
                    msg = deserialize_message(raw, cam.msg_class)
                    pair = cam.depth.open(msg) if cam.depth is not None else None
                    pending.append(_Pending(cam, t, msg, pair))
                elif conn.topic in by_depth:
                    by_depth[conn.topic].depth.on_depth(deserialize_message(raw, Image))
                elif conn.topic in by_info:
                    by_info[conn.topic].depth.on_info(deserialize_message(raw, CameraInfo))
            except Exception as exc:  # corrupt CDR: that message is skipped, the rest goes on
                if cam is not None:
                    self._skip(report, f"undeserializable {conn.msgtype}: {type(exc).__name__}")
                continue
            # Frames whose depth window has passed (bag order) are ready; process full batches.
            ready = sum(1 for p in pending if p.time_ns + slop_ns < t)
            while take := self._take(pending, ready, final=False):
                ready -= len(take)
                self._process(take, out, cams, topics, report, progress)
        while take := self._take(pending, len(pending), final=True):
            self._process(take, out, cams, topics, report, progress)

    def _take(self, pending: collections.deque, ready: int, final: bool) -> list[_Pending]:
        """The next batch among the first `ready` pending frames: with keyframes one take as
        the node makes it (at most one frame per camera), else --batch frames (fewer only
        at the end, `final`)."""
        if self.keyframes:
            seen: set[str] = set()
            for p in list(pending)[:ready]:
                if p.cam.name in seen:
                    break
                seen.add(p.cam.name)
            n = len(seen)
        else:
            n = min(ready, self.s.batch)
            if n < self.s.batch and not final:
                return []
        return [pending.popleft() for _ in range(n)]

    def _process(self, take: list[_Pending], out: OutputBag, cams: list[BagCamera],
                 topics: dict, report: BagReport,
                 progress: Callable[[int], None] | None) -> None:
        frames = []
        for p in take:
            try:
                frames.append((p, decode_rgb(p.msg, self.s.node.max_image_pixels)))
            except ImageDecodeError as exc:
                if p.pair is not None:
                    p.cam.depth.pairing.close(p.pair)
                self._skip(report, f"undecodable frame on {p.cam.image_topic}", str(exc))
        if not frames:
            if progress:
                progress(len(take))
            return
        primary = next((i for i, (p, _) in enumerate(frames) if p.cam is cams[0]), None)
        results = self.pipeline.process_batch(
            [(rgb, m.stamp_seconds(p.msg.header.stamp)) for p, rgb in frames], primary)
        if not self._labels_written:
            self._write_label_map(out, topics, frames[0][0].time_ns,
                                  frames[0][0].msg.header.stamp)
        mono8 = self.s.node.publish_confidence_mono8 or self.s.node.use_depth
        for (p, rgb), result in zip(frames, results, strict=True):
            cloud = points = None
            if p.pair is not None:
                cloud, points = p.cam.depth.cloud(p.pair, result)
            header = m.copy_header(p.msg.header)
            if self.s.features:  # before the segmentation, which marks a frame done (resume)
                seg = self.pipeline.segmenter
                out.write(topics[(p.cam.name, "features")], p.time_ns, feature_map_msg(
                    result.features, header, FeatureSpace(seg.config.model, seg.weights_id)))
            for name, msg in frame_messages(result, header, rgb, self.s.node.overlay_alpha,
                                            0.0, 0.0, 0, cloud, points,
                                            confidence_mono8=mono8, overlay=self.s.overlay,
                                            markers=True):
                out.write(topics[(p.cam.name, name)], p.time_ns, msg)
            report.frames[p.cam.image_topic] += 1
            report.last_time_ns = p.time_ns
        if progress:
            progress(len(take))

    def _write_label_map(self, out: OutputBag, topics: dict, time_ns: int, stamp: Any) -> None:
        """label_map and label_info once, before the first frame's outputs, stamped with the
        first frame's stamp (the node stamps them with its clock at configure)."""
        from ovseg_ros.node.outputs import LabelInfo, VisionClass

        snap = self.pipeline.segmenter.snapshot
        stamp = type(stamp)(sec=stamp.sec, nanosec=stamp.nanosec)
        out.write(topics[("", "label_map")], time_ns,
                  m.label_map_msg(snap.names, snap.ids, snap.background, snap.version, stamp))
        if LabelInfo is not None:
            threshold = self.pipeline.segmenter.config.threshold
            out.write(topics[("", "label_info")], time_ns, m.label_info_msg(
                LabelInfo, VisionClass, snap.names, snap.ids, snap.background, threshold, stamp))
        self._labels_written = True

    # ---- helpers ------------------------------------------------------------------------------

    def _skip(self, report: BagReport, reason: str, detail: str = "") -> None:
        """Count a skipped frame under `reason`; the first of each reason is logged."""
        first = reason not in report.skipped
        report.skipped[reason] = report.skipped.get(reason, 0) + 1
        if first:
            log.warning("skipped: %s%s", reason, f" ({detail})" if detail else "")

    def _slice(self, bag: InputBag) -> tuple[int | None, int | None]:
        def at(value: float | None) -> int | None:
            if value is None:
                return None
            # Above 1e9 s (2001): an absolute stamp; below, seconds from the bag's start.
            return int(value * 1e9) if value > 1e9 else bag.start_ns + int(value * 1e9)
        return at(self.s.start), at(self.s.end)

    def _carry_over(self, old: Path, out: OutputBag, cams: list[BagCamera], topics: dict,
                    report: BagReport) -> set[tuple[str, int]]:
        """--resume: the outputs of every frame the interrupted run completed (its segmentation
        message is written last) go into the new partial; those frames are not processed again.
        Copied input messages are copied again from the input (all of them); the label map
        is kept."""
        by_topic = {t.topic: key for key, t in topics.items()}
        records = [r for r in read_partial(old) if r[0] in by_topic]
        done = {(by_topic[topic][0], t) for topic, t, _ in records
                if by_topic[topic][1] == "segmentation"}
        for topic, t, raw in records:
            key = by_topic[topic]
            if key[1] in ("label_map", "label_info") or (key[0], t) in done:
                out.write_raw(topics[key], t, raw)
                self._labels_written |= key[1] == "label_map"
        report.resumed_frames = len(done)
        image_of = {c.name: c.image_topic for c in cams}
        return {(image_of[cam], t) for cam, t in done}


def check_image_topics(bag: InputBag, wanted: tuple[str, ...]) -> None:
    """BagError naming the bag's image topics when one of `wanted` is not among them."""
    have = bag.topics(IMAGE_TYPES)
    missing = [t for t in wanted if t not in have]
    if missing:
        listing = ", ".join(f"{t} ({have[t].split('/')[-1]})" for t in sorted(have)) or "none"
        raise BagError(f"{bag.path}: no image topic {', '.join(missing)}; its image topics: "
                       f"{listing}")


__all__ = ["BagError", "BagJob", "BagReport", "BagSettings", "check_image_topics"]
