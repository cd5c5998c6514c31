"""One bag through the frame step the node runs (frame/step.py): every image frame decoded,
segmented (`FramePipeline.process_batch`), paired with depth (the node's pairing) and turned
into the node's messages, serialized to the same CDR bytes. The only differences from the live
node are where the outputs go (into a bag, at the input message's bag time, in order) and the
frame policy (every frame; no latest-frame-wins).

Deterministic: the same input and settings give the same bytes. The Segmentation fields that
measure wall-clock time on the live node (inference_ms, latency_ms, frames_dropped) are 0
here; the run's timing is in the summary (`BagReport`). ROS-free: rosbags reads and writes,
the frame step builds the messages.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ovseg_ros.bag import BagError
from ovseg_ros.bag.run_record import check_resumable, run_record, write_record
from ovseg_ros.bag.sink import OutputBag, Topic, partial_path, prepare_output, read_partial
from ovseg_ros.bag.source import IMAGE_TYPES, InputBag
from ovseg_ros.bag.topics import BagCamera, cameras_for, output_topics
from ovseg_ros.frame.builder import MessageBuilder, builder_for
from ovseg_ros.frame.log import FrameLog
from ovseg_ros.frame.step import (
    BaseSink,
    FrameResult,
    FrameStep,
    Incoming,
    StepCamera,
    StepSettings,
    make_step,
)
from ovseg_ros.frame.types import default_distro

if TYPE_CHECKING:
    from ovseg_ros.objects.config import ObjectsConfig
    from ovseg_ros.settings.parameters import NodeConfig


def _objects_off() -> ObjectsConfig:
    from ovseg_ros.objects.config import ObjectsConfig

    return ObjectsConfig()

log = logging.getLogger("ovseg.bag")


@dataclass(frozen=True)
class BagSettings:
    """What `ovseg bag` does besides the model settings (those are the pipeline's)."""

    node: NodeConfig  # prompts, overlay_alpha, publish_confidence_mono8, depth, max_image_pixels
    objects: ObjectsConfig = field(default_factory=lambda: _objects_off())
    image_topics: tuple[str, ...] = ()  # empty: the bag's one image topic
    depth_topics: tuple[str, ...] = ()  # one per image topic, or none
    info_topics: tuple[str, ...] = ()
    ns: str = "/ovseg"
    copy: bool = True
    outputs: tuple[str, ...] = ()  # the optional outputs to write too (frame/outputs.py)
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
    incoming: Incoming


class BagSink(BaseSink):
    """Writes the frame step's outputs into the output bag, at each input frame's bag time."""

    def __init__(self, out: OutputBag, topics: dict[tuple[str, str], Topic],
                 builder: MessageBuilder, report: BagReport, cams: list[BagCamera]) -> None:
        self.out, self.topics, self.builder, self.report = out, topics, builder, report
        self.image_topic = {c.name: c.image_topic for c in cams}

    def wants(self, camera: str, output: str) -> bool:
        return (camera, output) in self.topics

    def emit(self, camera: str, output: str, msg: Any, frame: FrameResult | None) -> None:
        time_ns = frame.incoming.bag_time_ns if frame is not None else 0
        self.out.write_raw(self.topics[(camera, output)], time_ns, self.builder.serialize(msg))

    def frame_done(self, frame: FrameResult) -> None:
        self.report.frames[self.image_topic[frame.camera]] += 1
        self.report.last_time_ns = frame.incoming.bag_time_ns


class BagJob:
    """Processes bags with one loaded FramePipeline (reused from bag to bag)."""

    def __init__(self, pipeline: Any, settings: BagSettings) -> None:
        self.pipeline, self.s = pipeline, settings
        self.keyframes = pipeline.config.enabled
        self.builder = builder_for(settings.distro)

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
        frame_log = FrameLog(log)
        try:
            cams = cameras_for(bag, self.s, log, frame_log.throttle)
            record = run_record(self.pipeline, self.s)
            old = prepare_output(output, overwrite, resume, fresh_partial)
            if old is not None:
                try:
                    check_resumable(old, record, str(partial_path(output)))
                except BagError:
                    old.rename(partial_path(output))  # kept as it was, for a matching run
                    raise
            start_ns, stop_ns = self._slice(bag)
            image_topics = {c.image_topic for c in cams}
            if total is not None:
                total(bag.count(image_topics))
            step = self._step(cams, frame_log)
            with OutputBag(output, self.s.distro) as out:
                write_record(out.partial, record)
                try:
                    topics = output_topics(out, cams, self.s)
                    sink = BagSink(out, topics, self.builder, report, cams)
                    done = self._carry_over(old, out, cams, topics, report, step) if old \
                        else set()
                    self._loop(bag, step, sink, cams, done, start_ns, stop_ns, report,
                               progress)
                except KeyboardInterrupt as exc:
                    report.status = "interrupted"
                    report.seconds = time.perf_counter() - t0
                    report.skipped = dict(frame_log.counts)
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
        report.skipped = dict(frame_log.counts)
        report.status = "done"
        report.seconds = time.perf_counter() - t0
        return report

    def _step(self, cams: list[BagCamera], frame_log: FrameLog) -> FrameStep:
        node = self.s.node
        settings = StepSettings(node.max_image_pixels, node.overlay_alpha, self.s.objects)
        return make_step(self.pipeline, [StepCamera(c.name, c.image_topic, c.depth)
                                         for c in cams], lambda: settings, self.builder,
                         frame_log)

    # ---- the frame loop ---------------------------------------------------------------------

    def _loop(self, bag: InputBag, step: FrameStep, sink: BagSink, cams: list[BagCamera],
              done: set[tuple[str, int]], start_ns: int | None, stop_ns: int | None,
              report: BagReport, progress: Callable[[int], None] | None) -> None:
        by_image = {c.image_topic: c for c in cams}
        by_depth = {c.depth_topic: c for c in cams if c.depth is not None}
        by_info = {c.info_topic: c for c in cams if c.depth is not None}
        copies: dict[int, Topic] = {}
        slop_ns = int(self.s.node.depth_slop_s * 1e9)
        pending: collections.deque[_Pending] = collections.deque()
        report.frames = {c.image_topic: 0 for c in cams}
        read = self.builder.deserialize
        for conn, t, raw in bag.messages():
            if self.s.copy:
                topic = copies.get(conn.id) or copies.setdefault(conn.id, bag.copy_topic(conn))
                sink.out.write_raw(topic, t, raw)
            cam = by_image.get(conn.topic)
            try:
                if cam is not None:
                    if (start_ns is not None and t < start_ns) or \
                            (stop_ns is not None and t > stop_ns):
                        continue
                    if (cam.image_topic, t) in done:
                        continue
                    msg = read(raw, cam.msgtype)
                    pair = cam.depth.open(msg) if cam.depth is not None else None
                    pending.append(_Pending(cam, Incoming(msg, 0.0, pair, t)))
                elif conn.topic in by_depth:
                    by_depth[conn.topic].depth.on_depth(read(raw, "sensor_msgs/msg/Image"))
                elif conn.topic in by_info:
                    by_info[conn.topic].depth.on_info(read(raw, "sensor_msgs/msg/CameraInfo"))
            except Exception as exc:  # corrupt CDR: that message is skipped, the rest goes on
                if cam is not None:
                    reason = f"undeserializable {conn.msgtype}: {type(exc).__name__}"
                    step.log.refused(reason, f"skipped: {reason}")
                continue
            # Frames whose depth window has passed (bag order) are ready; process full batches.
            ready = sum(1 for p in pending if p.incoming.bag_time_ns + slop_ns < t)
            while take := self._take(pending, ready, final=False):
                ready -= len(take)
                self._process(step, sink, take, progress)
        while take := self._take(pending, len(pending), final=True):
            self._process(step, sink, take, progress)

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

    def _process(self, step: FrameStep, sink: BagSink, take: list[_Pending],
                 progress: Callable[[int], None] | None) -> None:
        step.run([(p.cam.name, p.incoming) for p in take], sink)
        if progress:
            progress(len(take))

    # ---- helpers ------------------------------------------------------------------------------

    def _slice(self, bag: InputBag) -> tuple[int | None, int | None]:
        def at(value: float | None) -> int | None:
            if value is None:
                return None
            # Above 1e9 s (2001): an absolute stamp; below, seconds from the bag's start.
            return int(value * 1e9) if value > 1e9 else bag.start_ns + int(value * 1e9)
        return at(self.s.start), at(self.s.end)

    def _carry_over(self, old: Path, out: OutputBag, cams: list[BagCamera], topics: dict,
                    report: BagReport, step: FrameStep) -> set[tuple[str, int]]:
        """--resume: the outputs of every frame the interrupted run completed (its segmentation
        message is written last) go into the new partial; those frames are not processed again.
        Copied input messages are copied again from the input (all of them); the label map
        is kept, and counts as announced."""
        by_topic = {t.topic: key for key, t in topics.items()}
        records = [r for r in read_partial(old) if r[0] in by_topic]
        done = {(by_topic[topic][0], t) for topic, t, _ in records
                if by_topic[topic][1] == "segmentation"}
        for topic, t, raw in records:
            key = by_topic[topic]
            if key[1] in ("label_map", "label_info") or (key[0], t) in done:
                out.write_raw(topics[key], t, raw)
            if key[1] == "label_map":
                kept = self.builder.deserialize(raw, topics[key].msgtype)
                step.mark_announced(kept.version, kept.header.frame_id)
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
