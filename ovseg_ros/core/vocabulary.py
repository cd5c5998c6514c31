"""Prompt validation and label ids.

Label id 0 means "background or unlabelled". Each class name gets an id >= 1 that stays the same
while the name is in the vocabulary. What a new name gets depends on `label_ids`:

- "stable": the next id never handed out (removed names keep theirs reserved), so an id means
  one name for the life of the Vocabulary: for mappers that accumulate labels over time.
- "reuse": the lowest id no name of the new vocabulary holds, so ids stay within the largest
  vocabulary's size (mono8 label images up to 255 classes, as Nav2 needs). An id may then name
  another class after a change: every change gets a new version, and consumers map ids with
  the label map of the frame's version.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BACKGROUND = "background"
MAX_ID = 65535  # label images are at most mono16
MAX_NAME_CHARS = 1000  # refused before tokenising (a 77-token name is far shorter)
LABEL_IDS = ("stable", "reuse")
MAX_MONO8_ID = 255  # above it the label image is mono16, which Nav2's layer cannot read


class VocabularyError(ValueError):
    """The prompts were refused; the message says which and why."""


# Whitespace a name may contain (collapsed to one space); any other control character
# (category Cc: NUL, ESC, BEL, ...) is refused.
_WHITESPACE_CONTROLS = frozenset(" \t\n\r\x0b\x0c")


def normalise_name(name: str) -> str:
    """The one form of a class name: Unicode NFKC (full-width letters, ligatures and
    compatibility spaces become their plain forms), invisible format characters removed
    (category Cf: zero-width spaces and joiners, bidi embeddings, overrides and marks, soft
    hyphens, BOM), runs of whitespace (``\\n``, ``\\t``, ...) collapsed to one space, ends
    stripped. Case is kept (CLIP's tokenizer lowercases; duplicates compare casefolded).
    Names that look alike to a reader are then the same name, with the same id."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split())


def check_name(raw: object, label: str, token_count: Callable[[str], int] | None = None,
               max_tokens: int = 77, max_chars: int = MAX_NAME_CHARS) -> tuple[str, str | None]:
    """(normalised name, None), or ("", the problem) for one class name or query phrase.

    label names the item in the message (e.g. "prompt 3"). Refused: not a string, more than
    `max_chars` characters (checked before tokenising), control characters other than
    whitespace, empty once normalised (`normalise_name`), and longer than CLIP's `max_tokens`
    context once in a template (`token_count` tells; refused rather than silently truncated,
    since a cut name is a different class). The one rule for prompts and phrases alike."""
    if not isinstance(raw, str):
        return "", f"{label} is not a string"
    if len(raw) > max_chars:
        return "", (f"{label} has {len(raw)} characters (at most {max_chars}, and "
                    f"{max_tokens} tokens once in a template)")
    if any(unicodedata.category(c) == "Cc" and c not in _WHITESPACE_CONTROLS for c in raw):
        return "", f"{label} {raw[:40]!r} contains control characters"
    name = normalise_name(raw)
    if not name:
        return "", (f"{label} {raw[:40]!r} is empty or whitespace once normalised (zero-width "
                    "and bidi control characters are removed)")
    if token_count is not None and token_count(name) > max_tokens:
        return "", (f"{label} {name[:40]!r}... is longer than CLIP's {max_tokens}-token "
                    "context once put in a template")
    return name, None


def validate_prompts(
    prompts: Sequence[str],
    token_count: Callable[[str], int] | None = None,
    max_tokens: int = 77,
    max_prompts: int = 256,
    background: bool = False,
) -> list[str]:
    """Return the normalised prompts, or raise VocabularyError naming every problem.

    Names are normalised first (`normalise_name`). Refused: an empty list, more than
    `max_prompts`, duplicates after normalisation (case-insensitive), "background" when
    background handling adds it already, and whatever `check_name` refuses for one name (not a
    string, over MAX_NAME_CHARS characters, control characters other than whitespace, empty
    once normalised, longer than CLIP's context once in a template)
    """
    if isinstance(prompts, str):
        raise VocabularyError("prompts must be a list of names, not one string")
    if not prompts:
        raise VocabularyError("the prompt list is empty")
    if len(prompts) > max_prompts:
        raise VocabularyError(f"{len(prompts)} prompts exceed the limit of {max_prompts}")
    problems: list[str] = []
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(prompts):
        name, problem = check_name(raw, f"prompt {i}", token_count, max_tokens)
        key = name.casefold()
        if problem is None and key in seen:
            problem = f"prompt {i} {name!r} duplicates prompt {seen[key]}"
        if problem is None and background and key == BACKGROUND:
            problem = f"prompt {i} 'background' is implicit (id 0) while background is on"
        if problem is not None:
            problems.append(problem)
            continue
        seen[key] = i
        names.append(name)
    if problems:
        raise VocabularyError("; ".join(problems))
    return names


@dataclass(frozen=True)
class VocabularySnapshot:
    """An immutable view of the vocabulary; a frame uses one snapshot from start to end."""

    names: tuple[str, ...]  # prompts, in order
    ids: tuple[int, ...]  # their label ids, aligned with names
    background: bool
    version: int

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self.names, self.ids, strict=True))


class Vocabulary:
    """Class names with their ids (see the module doc for `label_ids`). Not thread-safe by
    itself: the owner serialises updates."""

    def __init__(self, background: bool = True, label_ids: str = "stable"):
        if label_ids not in LABEL_IDS:
            raise VocabularyError(f"label_ids={label_ids!r} is not one of: "
                                  f"{', '.join(LABEL_IDS)}")
        self.background = background
        self.label_ids = label_ids
        # stable: every name ever seen (casefolded) -> id; reuse: the current names only.
        self._ids: dict[str, int] = {}
        self._next_id = 1  # above every id handed out so far
        self.snapshot = VocabularySnapshot((), (), background, 0)

    def assign(self, names: Sequence[str]) -> VocabularySnapshot:
        """Make `names` (already validated) the active vocabulary; returns the new snapshot,
        whose version is one more than the last one's (every change is a new version)."""
        keys = [name.casefold() for name in names]
        ids = self._reused(keys) if self.label_ids == "reuse" else self._stable(keys)
        self._next_id = max([self._next_id, *(i + 1 for i in ids)])
        self.snapshot = VocabularySnapshot(
            tuple(names), tuple(ids), self.background, self.snapshot.version + 1
        )
        return self.snapshot

    def carry_over(self, background: bool, label_ids: str | None = None) -> Vocabulary:
        """A new, empty vocabulary that keeps this one's ids and version: after a reconfigure,
        the names of the last vocabulary get their ids back (stable: every name seen before)
        and the version keeps counting, so a version never names two different mappings."""
        new = Vocabulary(background, label_ids or self.label_ids)
        current = dict(zip((n.casefold() for n in self.snapshot.names), self.snapshot.ids,
                           strict=True))
        # Switching from reuse, only the current names' ids are known to mean them.
        new._ids = dict(self._ids) if self.label_ids == new.label_ids else current
        new._next_id = self._next_id
        new.snapshot = VocabularySnapshot((), (), background, self.snapshot.version)
        return new

    def _stable(self, keys: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for key in keys:
            if key not in self._ids:
                self._ids[key] = self._allocate(taken=set(ids) | set(self.snapshot.ids))
            ids.append(self._ids[key])
        return ids

    def _reused(self, keys: Sequence[str]) -> list[int]:
        """Names of the current vocabulary keep their ids; each new one takes the lowest id
        that no name of the new vocabulary holds, in list order."""
        kept = {key: self._ids[key] for key in keys if key in self._ids}
        taken = set(kept.values())
        ids: list[int] = []
        candidate = 1
        for key in keys:
            if key not in kept:
                while candidate in taken:
                    candidate += 1
                kept[key] = candidate
                taken.add(candidate)
            ids.append(kept[key])
        self._ids = kept
        return ids

    def _allocate(self, taken: set[int]) -> int:
        if self._next_id <= MAX_ID:
            self._next_id += 1
            return self._next_id - 1
        # All 65535 ids were handed out once: recycle the smallest one not in use.
        for candidate in range(1, MAX_ID + 1):
            if candidate not in taken:
                self._ids = {k: v for k, v in self._ids.items() if v != candidate}
                return candidate
        raise VocabularyError("no free label id left")
