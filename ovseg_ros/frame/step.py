"""The one frame step: a batch of input messages in -> every output of each frame, into a sink.

The node (ROS publishers), `ovseg bag` (a bag writer) and `ovseg segment` (files) run this
same step and differ only in their `FrameSink` (where outputs go, which ones are wanted, the
live timing fields) and in their frame policy (latest wins live, every frame offline). Per
frame: decode once, segment the batch in one `FramePipeline.process_batch` call (keyframes
follow the first camera), pair depth and build the cloud, announce the vocabulary (label map
and LabelInfo) before the first frame that uses a new one, then build the wanted outputs.
Messages are rosbags classes of one distro, serialized by the sink (`MessageBuilder`); refused
frames are counted and logged through one `FrameLog`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from ovseg_ros.core import device
from ovseg_ros.core.results import SegmentationResult
from ovseg_ros.core.vocabulary import VocabularySnapshot
from ovseg_ros.frame import messages
from ovseg_ros.frame.builder import MessageBuilder
from ovseg_ros.frame.depth import DepthInput
from ovseg_ros.frame.log import FrameLog, one_line
from ovseg_ros.frame.objects import ObjectsOfFrame, StepObjects
from ovseg_ros.frame.outputs import FRAME_TABLE, VOCABULARY_OUTPUTS
from ovseg_ros.geometry import ClassPoint, PairRequest, SemanticCloud
from ovseg_ros.io import ImageDecodeError, decode_compressed, decode_image
from ovseg_ros.objects.config import ObjectsConfig
from ovseg_ros.viz import overlay as blend


def decode_rgb(msg: Any, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image or CompressedImage message of any implementation
    (ImageDecodeError when it cannot be decoded or exceeds max_pixels)."""
    if not hasattr(msg, "encoding"):  # CompressedImage: format + data
        return decode_compressed(msg.format, msg.data, max_pixels)
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                        msg.data, max_pixels)


class Incoming(NamedTuple):
    """A frame waiting for the step (no decoding on the thread that received it): a message,
    or (`ovseg segment`) RGB already decoded from a file, with its stamp."""

    msg: Any  # sensor_msgs Image or CompressedImage; None with `rgb`
    received: float  # time.monotonic() at arrival
    pair: PairRequest | None = None  # with depth: the search for this frame's depth
    bag_time_ns: int = 0  # offline: the input message's bag time
    rgb: np.ndarray | None = None  # (H, W, 3) uint8, instead of a message
    stamp: float = 0.0  # with `rgb`: the header's stamp, seconds

    @classmethod
    def decoded(cls, rgb: np.ndarray, stamp: float) -> Incoming:
        return cls(None, time.monotonic(), rgb=rgb, stamp=stamp)


@dataclass
class StepCamera:
    """What the step knows of one input: its name ("" alone), input topic and depth."""

    name: str
    topic: str
    depth: DepthInput | None = None


@dataclass
class FrameResult:
    """One segmented frame and what was built from it."""

    camera: str
    incoming: Incoming
    header: Any  # the input's header (a copy): every output carries it
    stamp: float
    rgb: np.ndarray  # (H, W, 3) uint8
    result: SegmentationResult
    decode_s: float
    inference_s: float  # the batch's model time, shared by the frames segmented together
    batch_size: int
    cloud: SemanticCloud | None = None
    points_3d: dict[int, ClassPoint] | None = None
    cloud_s: float = 0.0
    emit_s: float = 0.0  # building and handing over the outputs
    overlay_alpha: float = 0.5
    timing: tuple[float, float, int] = (0.0, 0.0, 0)  # the sink's (inference_ms, latency_ms,
    # frames_dropped), as the segmentation message carries them
    objects: ObjectsOfFrame | None = None  # with the `objects` setting on (made on first use)
    _overlay: np.ndarray | None = field(default=None, repr=False)

    @property
    def overlay_made(self) -> bool:
        return self._overlay is not None

    def overlay(self) -> np.ndarray:
        """(H, W, 3) uint8 colour blend with a legend of the visible classes (made once)."""
        if self._overlay is None:
            self._overlay = blend(self.rgb, self.result.labels, self.overlay_alpha,
                                  messages.legend_for(self.result))
        return self._overlay


class FrameSink(Protocol):
    """Where a step's outputs go (`BaseSink` has the defaults)."""

    def wants(self, camera: str, output: str) -> bool:
        """Build this output? (the node: subscribed or enabled; a bag: chosen at start)"""

    def timing(self, frame: FrameResult) -> tuple[float, float, int]:
        """Segmentation's (inference_ms, latency_ms, frames_dropped); zeros offline."""

    def accepting(self) -> bool:
        """False once outputs must stop (a deactivated or shut-down node)."""

    def emit(self, camera: str, output: str, msg: Any, frame: FrameResult | None) -> None:
        """One output message of `frame` (camera "" for the vocabulary's: then `frame` is the
        frame it is announced for, None outside a frame)."""

    def frame_done(self, frame: FrameResult) -> None:
        """Every output of `frame` was emitted."""

    def frame_refused(self, camera: str, reason: str, text: str) -> None:
        """A frame produced no output (undecodable, out of memory, ...)."""


class BaseSink:
    """A sink that wants no message, has no live timing and ignores refusals: what sinks that
    write files or bags start from."""

    def wants(self, camera: str, output: str) -> bool:
        return False

    def timing(self, frame: FrameResult) -> tuple[float, float, int]:
        return 0.0, 0.0, 0  # the live node's wall-clock fields

    def accepting(self) -> bool:
        return True

    def emit(self, camera: str, output: str, msg: Any, frame: FrameResult | None) -> None:
        pass

    def frame_done(self, frame: FrameResult) -> None:
        pass

    def frame_refused(self, camera: str, reason: str, text: str) -> None:
        pass  # counted and logged by the step's FrameLog


@dataclass(frozen=True)
class StepSettings:
    """The step's own settings, read once per batch (the node's change while it runs)."""

    max_image_pixels: int
    overlay_alpha: float
    objects: ObjectsConfig | None = None  # None: no objects


class FrameStep:
    """Runs batches of frames of `cameras` through `pipeline` into a sink."""

    def __init__(self, pipeline: Any, cameras: Sequence[StepCamera],
                 settings: Callable[[], StepSettings], builder: MessageBuilder, log: FrameLog,
                 feature_space: messages.FeatureSpace | None = None,
                 logit_scale: float = 100.0) -> None:
        self.pipeline = pipeline
        self.cameras = {c.name: c for c in cameras}
        self.primary = cameras[0].name  # keyframes follow the first camera
        self.settings = settings
        self.builder = builder
        self.log = log
        self.feature_space = feature_space
        self.logit_scale = logit_scale
        self.frames_out_of_memory = 0
        self.objects = StepObjects(log)
        self._announce_lock = threading.Lock()
        self._announced = (-1, None)  # (vocabulary version, frame_id) last announced
        self._announced_vocab: VocabularySnapshot | None = None
        self._frame_id = ""  # the first camera's frame, once a frame showed it

    # ---- the batch ---------------------------------------------------------------------------

    def run(self, batch: Sequence[tuple[str, Incoming]], sink: FrameSink) -> list[FrameResult]:
        """Decode, segment and emit every frame of `batch` ((camera, Incoming), at most one
        per camera live; any number offline). Returns the frames that were emitted."""
        cfg = self.settings()
        decoded = [d for name, item in batch
                   if (d := self._decode(name, item, cfg, sink)) is not None]
        if not decoded:
            return []
        primary = next((i for i, d in enumerate(decoded) if d[0] == self.primary), None)
        t0 = time.perf_counter()
        results = self._infer(decoded, primary, sink)
        inference_s = time.perf_counter() - t0
        if results is None or not sink.accepting():
            return []
        done = []
        for (name, item, header, rgb, decode_s), result in zip(decoded, results, strict=True):
            if self._stale(result.vocabulary):
                text = (f"frame on {self.cameras[name].topic} dropped: labelled with vocabulary "
                        f"v{result.vocabulary.version}, whose ids mean other names in the "
                        f"v{self._announced_vocab.version} already announced (label_ids reuse)")
                self.log.refused("labelled with a replaced vocabulary", text)
                sink.frame_refused(name, "stale vocabulary", text)
                continue
            frame = FrameResult(name, item, header, messages.stamp_seconds(header.stamp), rgb,
                                result, decode_s, inference_s, len(decoded),
                                overlay_alpha=cfg.overlay_alpha)
            self._cloud(frame)
            if cfg.objects is not None and cfg.objects.objects:
                # Files have no clock (their stamps count frames): their tracks age in frames.
                stamp = frame.stamp if item.rgb is None else 0.0
                frame.objects = self.objects.for_frame(name, cfg.objects, result, stamp,
                                                       lambda f=frame: f.cloud)
            t1 = time.perf_counter()
            self._emit_frame(frame, sink)
            frame.emit_s = time.perf_counter() - t1
            sink.frame_done(frame)
            done.append(frame)
        return done

    def _decode(self, name: str, item: Incoming, cfg: StepSettings, sink: FrameSink):
        t0 = time.perf_counter()
        if item.rgb is not None:
            header = self.builder.header(*messages.time_of(item.stamp), "")
            return name, item, header, item.rgb, time.perf_counter() - t0
        try:
            rgb = decode_rgb(item.msg, cfg.max_image_pixels)
        except ImageDecodeError as exc:
            cam = self.cameras[name]
            if item.pair is not None and cam.depth is not None:
                cam.depth.pairing.close(item.pair)
            self.log.refused(f"undecodable frame on {cam.topic}",
                             f"dropping frame from {cam.topic}: {exc}")
            sink.frame_refused(name, "undecodable", str(exc))
            return None
        if not rgb.flags.writeable:  # a view of read-only message bytes (rosbags, ours): the
            rgb = rgb.copy()  # model's torch tensors want writable memory
        header = self.builder.header_of(item.msg.header)
        return name, item, header, rgb, time.perf_counter() - t0

    def _infer(self, decoded: list, primary: int | None,
               sink: FrameSink) -> list[SegmentationResult] | None:
        """Segment every frame in one call; None after an out-of-memory error, which drops
        the frames and is reported (any other exception goes to the caller)."""
        try:
            return self.pipeline.process_batch(
                [(rgb, messages.stamp_seconds(header.stamp))
                 for _, _, header, rgb, _ in decoded], primary)
        except Exception as exc:
            if not device.is_out_of_memory(exc):
                raise
            text = one_line(exc)
        # Here the exception and its traceback (holding the frames' tensors) are gone, so the
        # freed blocks can actually go back to the device.
        device.free_device_memory(self.pipeline.segmenter.runtime.device)
        self.frames_out_of_memory += len(decoded)
        sizes = ", ".join(f"{rgb.shape[1]}x{rgb.shape[0]}" for _, _, _, rgb, _ in decoded)
        for name, _, header, rgb, _ in decoded:
            h, w = rgb.shape[:2]
            stamp = messages.stamp_seconds(header.stamp)
            sink.frame_refused(name, "out of memory",
                               f"frame stamped {stamp:.3f} ({w}x{h}) dropped: out of memory")
        self.log.refused("out of memory", f"out of memory on {sizes}: frame dropped, device "
                         "cache freed; lower input_size or max_image_pixels if this repeats "
                         f"({text[:200]})", error=True)
        return None

    def _cloud(self, frame: FrameResult) -> None:
        cam = self.cameras[frame.camera]
        if cam.depth is not None and frame.incoming.pair is not None:
            t0 = time.perf_counter()
            frame.cloud, frame.points_3d = cam.depth.cloud(frame.incoming.pair, frame.result)
            frame.cloud_s = time.perf_counter() - t0

    # ---- outputs -----------------------------------------------------------------------------

    def _emit_frame(self, frame: FrameResult, sink: FrameSink) -> None:
        if frame.camera == self.primary:
            self._frame_id = frame.header.frame_id
        self.announce(frame.result.vocabulary, frame.header.stamp, sink, frame=frame)
        frame.timing = sink.timing(frame)
        for output, msg in self.frame_messages(frame, sink):
            sink.emit(frame.camera, output, msg, frame)

    def frame_messages(self, frame: FrameResult, sink: FrameSink) -> list[tuple[str, Any]]:
        """(output, message) for every output of `frame` the sink wants, in table order
        (frame/outputs.py); an output with nothing for this frame is left out."""
        out: list[tuple[str, Any]] = []
        for row in FRAME_TABLE:
            if sink.wants(frame.camera, row.name):
                msg = row.build(self, frame)
                if msg is not None:
                    out.append((row.name, msg))
        return out

    # ---- the vocabulary ----------------------------------------------------------------------

    def announce(self, vocab: VocabularySnapshot | None, stamp: Any, sink: FrameSink,
                 force: bool = False, frame: FrameResult | None = None) -> bool:
        """Emit the label map and LabelInfo of `vocab` when it is newer than the last one
        announced (or the first camera's frame changed, or `force`): before the first frame
        that uses it (`frame`), and from the node when the vocabulary changes. True when
        emitted."""
        if vocab is None:
            return False
        with self._announce_lock:
            version, frame_id = self._announced
            if not force and (vocab.version < version or
                              (vocab.version == version and frame_id == self._frame_id)):
                return False
            self._announced = (vocab.version, self._frame_id)
            self._announced_vocab = vocab
            b = self.builder
            header = b.header(stamp.sec, stamp.nanosec, self._frame_id)
            threshold = self.pipeline.segmenter.config.threshold
            built = {"label_map": lambda: messages.label_map_msg(b, vocab, header),
                     "label_info": lambda: messages.label_info_msg(b, vocab, threshold, header)}
            for output in VOCABULARY_OUTPUTS:
                if sink.wants("", output):
                    sink.emit("", output, built[output](), frame)
            return True

    def _stale(self, vocab: VocabularySnapshot | None) -> bool:
        """A frame labelled with an older vocabulary than the one announced, in which one of
        its ids names another class (only with label_ids reuse): publishing it would make a
        consumer read its ids with the newer map."""
        with self._announce_lock:
            now = self._announced_vocab
        if vocab is None or now is None or vocab.version >= now.version:
            return False
        meaning = dict(zip(now.ids, now.names, strict=True))
        return any(meaning.get(i, n) != n for i, n in zip(vocab.ids, vocab.names, strict=True))

    def mark_announced(self, version: int, frame_id: str) -> None:
        """A vocabulary announced elsewhere (a resumed bag's earlier run)."""
        with self._announce_lock:
            self._announced = (version, frame_id)
            self._frame_id = frame_id



def make_step(pipeline: Any, cameras: Sequence[StepCamera],
              settings: Callable[[], StepSettings], builder: MessageBuilder,
              log: FrameLog) -> FrameStep:
    """The frame step of a loaded pipeline, as the node, `ovseg bag` and `ovseg segment` run
    it: its feature outputs name the pipeline's model and weights."""
    from ovseg_ros.core.features import FEATURE_VERSION, LOGIT_SCALE

    seg = pipeline.segmenter
    space = messages.FeatureSpace(seg.config.model, seg.weights_id, FEATURE_VERSION)
    return FrameStep(pipeline, cameras, settings, builder, log, space, LOGIT_SCALE)
