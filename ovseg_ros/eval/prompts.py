"""From a dataset's class list (with synonyms) to Segmenter prompts, and from the Segmenter's
label ids back to the dataset's class indices.

Several names may mean one class ("sky, clouds"): each name is its own prompt with its own
label id, and the lookup table sends every id to its class. With the Segmenter's background
handling on, class 0 is its implicit id 0, so the name "background" is no prompt (the
Vocabulary refuses it); any other name listed for class 0 is a prompt that maps to 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ovseg_ros.core.vocabulary import BACKGROUND, MAX_ID, normalise_name

from .classes import ClassList, ClassListError
from .protocol import IGNORE_INDEX

NO_CLASS = IGNORE_INDEX  # a pixel the Segmenter left unlabelled (id 0 without background)


@dataclass(frozen=True)
class PromptMapping:
    """prompts: the names to give `Segmenter.set_prompts`, in order.
    classes: the dataset class index of each prompt, aligned with prompts.
    background: whether the Segmenter's implicit background (id 0) is dataset class 0."""

    prompts: tuple[str, ...]
    classes: tuple[int, ...]
    background: bool

    def lookup(self, ids: Mapping[str, int]) -> np.ndarray:
        """The table label id -> dataset class index, (max id + 1,) uint8, from the name -> id
        map `set_prompts` returned; ids that are no class give NO_CLASS (255)."""
        table = np.full(max(ids.values(), default=0) + 1, NO_CLASS, dtype=np.uint8)
        if self.background:
            table[0] = 0
        for name, cls in zip(self.prompts, self.classes, strict=True):
            table[ids[name]] = cls
        return table


def build_mapping(classes: ClassList, background: bool) -> PromptMapping:
    """Prompts for `classes`; `background`: the Segmenter's background handling is on, so
    class 0 is its implicit background. Raises ClassListError when one name (compared like the
    Vocabulary does: whitespace-normalised, case-insensitive) is listed twice."""
    if len(classes) > 255:
        raise ClassListError(f"{len(classes)} classes do not fit the 8-bit prediction PNGs")
    prompts: list[str] = []
    owners: list[int] = []
    seen: dict[str, int] = {}
    for index, names in enumerate(classes):
        for raw in names:
            name = normalise_name(raw)
            key = name.casefold()
            if key in seen:
                raise ClassListError(
                    f"the name {name!r} is listed for class {seen[key]} and again for class "
                    f"{index}: each name may mean one class only")
            seen[key] = index
            if background and index == 0 and key == BACKGROUND:
                continue  # the Segmenter's implicit id 0
            if background and key == BACKGROUND:
                raise ClassListError(
                    f"'background' is listed for class {index}, but with background handling "
                    "it is the implicit class 0")
            prompts.append(name)
            owners.append(index)
    if len(prompts) > MAX_ID:
        raise ClassListError(f"{len(prompts)} names exceed the {MAX_ID} label ids")
    return PromptMapping(tuple(prompts), tuple(owners), background)


def to_class_indices(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Label ids (H, W) -> dataset class indices (H, W) uint8 through `table`."""
    return table[labels]
