"""The vocabulary's side of the node's outputs: the latched label map and LabelInfo (announced
through the frame step, which also announces a new vocabulary before the first frame that uses
it), Hydra's label-space files, the one warning when ids outgrow mono8, and the logged swap of
one vocabulary for another. The node serialises the calls (its vocabulary lock)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ovseg_ros.core.pipeline import FramePipeline
from ovseg_ros.core.vocabulary import MAX_MONO8_ID, VocabularySnapshot
from ovseg_ros.io.labelspace import write_label_space
from ovseg_ros.node.frames import LabelSink


def vocabulary_text(snap: VocabularySnapshot) -> str:
    pairs = ", ".join(f"{n}({i})" for n, i in zip(snap.names, snap.ids, strict=True))
    return f"vocabulary v{snap.version}: {pairs}"


class VocabularyOutputs:
    """Announces the pipeline's vocabulary on the label publishers (set once they exist)."""

    def __init__(self, pipeline: FramePipeline, label_space_dir: Callable[[], str],
                 log: Any, stamp: Callable[[], Any]) -> None:
        self.pipeline = pipeline
        self.label_space_dir = label_space_dir  # the node's current setting
        self.log = log
        self.stamp = stamp  # now, on the node's clock (builtin_interfaces/Time)
        self.publishers: dict[str, Any] = {}  # label_map, label_info: set at configure
        self.step: Any = None  # the node's FrameStep: set at configure
        self.warned_mono16 = False

    def snapshot(self) -> VocabularySnapshot:
        return self.pipeline.segmenter.snapshot

    def publish(self) -> None:
        """The label map and LabelInfo of the current vocabulary, now (latched), and Hydra's
        files; a second publication of one version is harmless (the threshold changed)."""
        self.write_label_space()
        self.warn_mono16()
        self.step.announce(self.snapshot(), self.stamp(),
                           LabelSink(self.publishers, self.step.builder), force=True)

    def write_label_space(self) -> None:
        """Hydra's label-space files for the current vocabulary (label_space_dir); a failure
        is logged, never raised (the vocabulary change itself succeeded)."""
        folder = self.label_space_dir()
        if not folder:
            return
        snap = self.snapshot()
        try:
            write_label_space(Path(folder), snap.names, snap.ids, snap.background)
        except OSError as exc:
            self.log.warning(f"label_space_dir: could not write Hydra's files: {exc}")

    def warn_mono16(self) -> None:
        """Warn once when the vocabulary's ids pass 255: the label image is then mono16, which
        Nav2's semantic segmentation layer misreads (one byte per pixel, uint8 class ids)."""
        snap = self.snapshot()
        top = max(snap.ids, default=0)
        if top <= MAX_MONO8_ID or self.warned_mono16:
            return
        self.warned_mono16 = True
        if self.pipeline.segmenter.config.label_ids == "reuse":
            why, fix = f"{len(snap.names)} classes at once", "use at most 255 classes"
        else:
            why = "label_ids:=stable: every name used so far keeps an id of its own"
            fix = "label_ids:=reuse keeps ids within the vocabulary's size"
        self.log.warning(
            f"label id {top} > {MAX_MONO8_ID}: ~/labels is mono16 now ({why}). Nav2's semantic "
            "segmentation layer reads one byte per pixel and keeps class ids as uint8, so it "
            f"misreads a mono16 label image: for Nav2, {fix}.")

    def set_prompts(self, prompts: Sequence[str]) -> None:
        """Swap the vocabulary (raises VocabularyError), log old -> new, republish the map."""
        before = vocabulary_text(self.snapshot())
        self.pipeline.set_prompts(list(prompts))
        after = vocabulary_text(self.snapshot())
        if after.split(": ", 1)[1] != before.split(": ", 1)[1]:
            self.log.info(f"{before} -> {after}")
        self.publish()
