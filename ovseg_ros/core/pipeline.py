"""FramePipeline: what the node and the command line run per frame.

It owns the Segmenter (CLIP-DINOiser on every frame) and, when enabled, the CLIP-DIY keyframe
logic, so both front ends behave the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .results import SegmentationResult
from .segmenter import Segmenter


class FramePipeline:
    """Per-frame segmentation with an optional keyframe companion. Thread-safe for
    `set_prompts`/`request_keyframe` against `process` running on a worker thread."""

    def __init__(self, segmenter: Segmenter):
        self.segmenter = segmenter

    def set_prompts(self, prompts: Sequence[str]) -> dict[str, int]:
        """Validate and swap the vocabulary (VocabularyError on refusal); name -> label id."""
        return self.segmenter.set_prompts(prompts)

    def request_keyframe(self) -> bool:
        """Ask for a keyframe on the next frame; False when keyframes are disabled."""
        return False

    def process(self, rgb: np.ndarray, stamp: float) -> SegmentationResult:
        """Segment one (H, W, 3) uint8 RGB frame taken at `stamp` (seconds)."""
        return self.segmenter.segment(rgb)

    def close(self) -> None:
        """Stop background work (keyframe threads); safe to call twice."""
