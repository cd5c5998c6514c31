"""The slow part of a vocabulary change, kept off the node's locks and one at a time.

Encoding the text of new class names takes seconds on a CPU (80 templates per name). Run
under the vocabulary lock, every other set_prompts, parameter change and get_prompts waited
for it, each holding one of the executor's 4 threads, until nothing answered (get_state
included). `TextEncodingGate` runs one encoding at a time outside that lock and refuses the
others at once with the reason (`PromptsBusy`): a caller that waited would hold a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from rclpy.parameter import Parameter

from ovseg_ros.core.vocabulary import normalise_name


class PromptsBusy(RuntimeError):
    """Another vocabulary change is encoding text: this one is refused, nothing changed."""


class TextEncodingGate:
    """One text encoding at a time; `encode` refuses the others with PromptsBusy."""

    def __init__(self) -> None:
        self._slot = threading.Lock()
        self._encoding = (0, 0.0)  # (new names, monotonic start) of the encoding under way

    @property
    def busy(self) -> bool:
        return self._slot.locked()

    def encode(self, pipeline: Any, prompts: Sequence[str]) -> str:
        """Encode the names of `prompts` whose text is not cached, in one batch, into
        `pipeline`'s caches. Raises VocabularyError for refused prompts and PromptsBusy while
        another encoding runs; returns what was encoded and how long it took ("" if nothing
        was new)."""
        missing = pipeline.segmenter.text_to_encode(prompts)
        if not missing:
            return ""
        if not self._slot.acquire(blocking=False):
            count, since = self._encoding
            raise PromptsBusy(
                f"busy: another prompt change is encoding {count} new name(s) (for "
                f"{time.monotonic() - since:.1f} s); nothing changed, call again when it is done")
        try:
            self._encoding = (len(missing), time.monotonic())
            pipeline.encode_text(missing)
            took = time.monotonic() - self._encoding[1]
        finally:
            self._slot.release()
        return f"encoded {len(missing)} new name(s) in {took:.2f} s"


def normalise_prompt_parameters(changes: list[Parameter]) -> list[Parameter]:
    """Pre-set-parameters callback: a `prompts` value is stored in its normalised form
    (core.vocabulary.normalise_name), the form the vocabulary, LabelMap and LabelInfo use."""
    out = []
    for p in changes:
        if p.name == "prompts" and isinstance(p.value, (list, tuple)) and all(
                isinstance(n, str) for n in p.value):
            p = Parameter("prompts", Parameter.Type.STRING_ARRAY,
                          [normalise_name(n) for n in p.value])
        out.append(p)
    return out
