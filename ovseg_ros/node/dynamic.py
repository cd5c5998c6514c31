"""The node's current settings and the dynamic parameter changes a configured node accepts:
core settings through `Segmenter.reconfigure`, prompts through the vocabulary, node settings by
swapping the frozen NodeConfig. All or nothing; the reason when refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ovseg_ros.node.vocabulary_outputs import VocabularyOutputs
from ovseg_ros.objects.config import ObjectsConfig
from ovseg_ros.settings.parameters import DYNAMIC, NodeConfig


class DynamicSettings:
    """`current` and `objects` are read where a setting acts (no copy to update on a
    change)."""

    def __init__(self, config: NodeConfig, objects: ObjectsConfig,
                 vocabulary: VocabularyOutputs) -> None:
        self.current = config
        self.objects = objects
        self.vocabulary = vocabulary

    def apply(self, new: dict[str, Any]) -> str | None:
        """Apply `new` ({parameter: value}), all or nothing; the reason when refused."""
        seg = self.vocabulary.pipeline.segmenter
        core = {k: v for k, v in new.items() if k in DYNAMIC and hasattr(seg.config, k)}
        old_core = {k: getattr(seg.config, k) for k in core}
        prompts = new.get("prompts")
        if prompts is not None and list(prompts) == list(self.vocabulary.snapshot().names):
            prompts = None  # the mirror of a set_prompts call, or no change
        limit = core.get("max_prompts", seg.config.max_prompts)
        if prompts is not None and len(prompts) > limit:
            return f"{len(prompts)} prompts exceed the limit of {limit}"
        # A larger limit goes first, a smaller one after the (shorter) list it must admit.
        limit_first = limit >= seg.config.max_prompts
        try:
            if limit_first:
                seg.reconfigure(**core)
            if prompts is not None:
                self.vocabulary.set_prompts(prompts)
            if not limit_first:
                seg.reconfigure(**core)
            node = {k: v for k, v in new.items() if hasattr(self.current, k)}
            objects = {k: v for k, v in new.items() if hasattr(self.objects, k)}
            new_objects = replace(self.objects, **objects)  # ConfigError before any swap
            self.current = replace(self.current, **node)
            self.objects = new_objects
        except Exception as exc:  # ConfigError, VocabularyError
            seg.reconfigure(**old_core)
            return str(exc)
        if "threshold" in new:  # LabelInfo carries it
            self.vocabulary.publish()
        return None
