"""FramePipeline: what the node and the command line run per frame.

It owns the Segmenter (CLIP-DINOiser on every frame) and, when enabled, the CLIP-DIY keyframe
logic, so both front ends behave the same. Fusion and prior formulas: see `fusion`.

Keyframes are due on the first frame (when a schedule is set), every N frames and/or every T
seconds after the last keyframe started, when requested, and when the vocabulary changed. A due
keyframe waits while one is still running (one at a time), then starts on the next frame.

- Synchronous mode (`asynchronous=False`; CLI, tests): CLIP-DIY runs on the due frame and is
  fused into that frame's result.
- Asynchronous mode (default; the node): CLIP-DIY runs on a background thread with a copy of the
  due frame; frames keep being segmented meanwhile. When it has finished, the next processed
  frame gets it fused (keyframe=True, keyframe_stamp = the stamp of the frame it ran on).
  Errors there are logged and counted (`keyframe_errors`, `last_keyframe_error`), never raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .config import KeyframeConfig
from .fusion import ClipDiyStage, KeyframeScores, PresencePrior, fuse_keyframe
from .results import SegmentationResult
from .segmenter import Segmenter

log = logging.getLogger(__name__)
# stage(rgb, result) -> (C, Hd, Wd) CLIP-DIY probabilities aligned with result.class_ids.
KeyframeStage = Callable[[np.ndarray, SegmentationResult], torch.Tensor]


class FramePipeline:
    """Per-frame segmentation with an optional keyframe companion. Thread-safe for
    `set_prompts`/`request_keyframe` against `process` running on a worker thread;
    `process` itself is called from one thread at a time.

    stage: replaces CLIP-DIY (default `fusion.ClipDiyStage`, built only when enabled).
    clock: time source for every_s and half-lives in seconds; default the frame stamps.
    """

    def __init__(self, segmenter: Segmenter, keyframes: KeyframeConfig | None = None, *,
                 stage: KeyframeStage | None = None, clock: Callable[[], float] | None = None):
        self.segmenter = segmenter
        self.config = keyframes or KeyframeConfig()
        self.clock = clock
        self.stage: KeyframeStage | None = None
        if self.config.enabled:
            self.stage = stage or ClipDiyStage(segmenter, self.config.clip_diy,
                                               self.config.keyframe_model,
                                               self.config.keyframe_weights)
        self._lock = threading.Lock()
        self._requested = False
        self._closed = False
        self._frame_index = 0
        self._seen_version: int | None = None
        self._last_start: tuple[int, float] | None = None  # (frame index, time)
        self._prior: PresencePrior | None = None
        self._job: threading.Thread | None = None
        self._finished: KeyframeScores | None = None
        self.keyframes_started = 0
        self.keyframes_fused = 0
        self.keyframe_errors = 0
        self.last_keyframe_error: str | None = None

    # ---- control (any thread) -------------------------------------------------------------

    def set_prompts(self, prompts: Sequence[str]) -> dict[str, int]:
        """Validate and swap the vocabulary (VocabularyError on refusal); name -> label id.
        Also encodes the CLIP-DIY text of new names, so a keyframe never waits for it."""
        ids = self.segmenter.set_prompts(prompts)
        prepare = getattr(self.stage, "prepare", None)
        if prepare is not None:
            prepare(list(ids))
        return ids

    def text_to_encode(self, prompts: Sequence[str]) -> list[str]:
        """Validate `prompts` (VocabularyError) and return the names `set_prompts` would have
        to encode: for the segmentation or for the CLIP-DIY stage (its own template)."""
        missing = self.segmenter.text_to_encode(prompts)
        stage_missing = getattr(self.stage, "missing", None)
        if stage_missing is not None:
            names = self.segmenter.validate(prompts)
            extra = set(stage_missing(names)) - set(missing)
            missing += [n for n in names if n in extra]
        return missing

    def encode_text(self, names: Sequence[str]) -> None:
        """Encode the text of `names` (validated, see `Segmenter.text_to_encode`) into the
        caches, all in one batch, without touching the active vocabulary: the slow part of a
        vocabulary change, which a caller can run outside its own locks."""
        self.segmenter.text_cache.embed(list(names))
        prepare = getattr(self.stage, "prepare", None)
        if prepare is not None:
            prepare(list(names))

    def request_keyframe(self) -> bool:
        """Ask for a keyframe on the next frame; False when keyframes are disabled."""
        if self.stage is None:
            return False
        with self._lock:
            self._requested = True
        return True

    @property
    def keyframe_in_progress(self) -> bool:
        job = self._job
        return job is not None and job.is_alive()

    def wait_for_keyframe(self, timeout: float | None = None) -> bool:
        """Block until the background keyframe (if any) has finished; False on timeout."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return not self.keyframe_in_progress

    def prior_factors(self, frame_index: int, now: float) -> dict[int, float] | None:
        """{label id: factor} the prior applies to a frame, or None when there is none."""
        prior = self._prior
        if prior is None or not self.config.prior:
            return None
        half_life, unit = self.config.prior_half_life
        age = now - prior.time if unit == "seconds" else frame_index - prior.frame_index
        return prior.at(age, half_life)

    # ---- per frame (one worker thread) ----------------------------------------------------

    def _now(self, stamp: float) -> float:
        return float(self.clock()) if self.clock is not None else float(stamp)

    def _due(self, index: int, now: float) -> bool:
        """Is a keyframe due on this frame? Consumes the request / vocabulary-change triggers."""
        cfg = self.config
        snapshot = self.segmenter.snapshot
        version = snapshot.version if snapshot else None
        with self._lock:
            changed = cfg.keyframe_on_prompt_change and version != self._seen_version
            due = self._requested or changed
            last = self._last_start
            if cfg.keyframe_every_n > 0:
                due |= last is None or index - last[0] >= cfg.keyframe_every_n
            if cfg.keyframe_every_s > 0:
                # A clock that went back (a bag replayed in a loop) restarts the schedule.
                due |= last is None or now - last[1] >= cfg.keyframe_every_s or now < last[1]
            busy = self.keyframe_in_progress or self._finished is not None
            if due and not busy and not self._closed:
                self.keyframes_started += 1
                self._requested = False
                self._seen_version = version
                self._last_start = (index, now)
                return True
            return False

    def process(self, rgb: np.ndarray, stamp: float) -> SegmentationResult:
        """Segment one (H, W, 3) uint8 RGB frame taken at `stamp` (seconds)."""
        return self.process_batch([(rgb, stamp)])[0]

    def process_batch(self, frames: Sequence[tuple[np.ndarray, float]],
                      primary: int | None = 0) -> list[SegmentationResult]:
        """Segment several (rgb, stamp) frames (one per camera) with one vocabulary; frames of
        one size share a forward pass (`Segmenter.segment_batch`).

        Only frames[primary] (None: no frame) follows the keyframe logic of `process`:
        schedule, fusion and prior. The others get plain CLIP-DINOiser, since a keyframe
        describes one camera's scene and its class-presence prior would suppress classes that
        another camera sees. While a prior is active the primary frame runs its own forward.
        """
        if not frames:
            return []
        images = [rgb for rgb, _ in frames]
        if primary is None:
            return self.segmenter.segment_batch(images)
        rgb, stamp = frames[primary]
        index, now = self._frame_index, self._now(stamp)
        self._frame_index += 1
        if self.stage is None:
            return self._segment(images, primary, None)
        with self._lock:  # an async keyframe that finished since the last frame
            ready, self._finished = self._finished, None
        start = self._due(index, now)
        sync = start and not self.config.asynchronous
        # A frame that gets a fresh keyframe fused is not also given the older prior.
        prior = None if ready or sync else self.prior_factors(index, now)
        results = self._segment(images, primary, prior)
        result = results[primary]
        if ready is not None:
            result = self._fuse(result, ready)
        if sync:
            keyframe = self._run_stage(rgb, result, stamp, index, now)
            result = self._fuse(result, keyframe)
        elif start:
            self._start_job(np.array(rgb, copy=True), result, stamp, index, now)
        results[primary] = result
        return results

    def _segment(self, images: list[np.ndarray], primary: int,
                 prior: dict[int, float] | None) -> list[SegmentationResult]:
        if len(images) > 1 and prior is None:
            return self.segmenter.segment_batch(images)
        # segment_batch applies one prior to every image: the primary frame runs alone.
        results = [self.segmenter.segment(images[primary], class_prior=prior)] * len(images)
        others = [i for i in range(len(images)) if i != primary]
        if others:
            batch = self.segmenter.segment_batch([images[i] for i in others])
            for i, res in zip(others, batch, strict=True):
                results[i] = res
        return results

    def _run_stage(self, rgb: np.ndarray, result: SegmentationResult, stamp: float,
                   index: int, now: float) -> KeyframeScores:
        t0 = time.perf_counter()
        device = self.segmenter.runtime.device
        if self.config.asynchronous and device.type == "cuda":
            # A side stream, so the frame stream's kernels do not queue behind the keyframe's;
            # synchronised here (in the keyframe thread) before the result is handed over.
            stream = torch.cuda.Stream(device)
            with torch.inference_mode(), torch.cuda.stream(stream):
                probs = self.stage(rgb, result)
            stream.synchronize()
        else:
            with torch.inference_mode():
                probs = self.stage(rgb, result)
        return KeyframeScores(probs=probs, class_ids=tuple(result.class_ids), stamp=stamp,
                              frame_index=index, time=now, seconds=time.perf_counter() - t0)

    def _start_job(self, rgb: np.ndarray, result: SegmentationResult, stamp: float, index: int,
                   now: float) -> None:
        def job() -> None:
            try:
                keyframe = self._run_stage(rgb, result, stamp, index, now)
            except Exception as exc:  # a failed keyframe must not stop the frame stream
                self.keyframe_errors += 1
                self.last_keyframe_error = f"{type(exc).__name__}: {exc}"
                log.warning("CLIP-DIY keyframe failed: %s", self.last_keyframe_error)
                return
            with self._lock:
                self._finished = keyframe

        self._job = threading.Thread(target=job, name="clipdiy-keyframe", daemon=True)
        self._job.start()

    def _fuse(self, result: SegmentationResult, keyframe: KeyframeScores) -> SegmentationResult:
        """Fuse spatially when the classes still match, and install the keyframe's prior
        (keyed by id, so it is installed even after a vocabulary change)."""
        cfg = self.config
        if cfg.prior:
            self._prior = PresencePrior.from_keyframe(keyframe, cfg.prior_floor)
        fused = fuse_keyframe(self.segmenter, result, keyframe, cfg.keyframe_fusion_weight)
        if fused is None:
            log.info("keyframe of stamp %.3f dropped: the vocabulary changed", keyframe.stamp)
            return result
        self.keyframes_fused += 1
        return fused

    def close(self, timeout: float = 5.0) -> None:
        """Stop background work: no new keyframes start; waits up to `timeout` s for a running
        one (its thread is a daemon, so it never blocks exit). Safe to call twice."""
        with self._lock:
            self._closed = True
        self.wait_for_keyframe(timeout)
