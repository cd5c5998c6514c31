"""Prompt validation and stable label ids.

Label id 0 means "background or unlabelled". Each class name gets an id >= 1 that never changes
for the life of the Vocabulary: removed names keep theirs reserved, so a consumer never sees
"chair" silently become the id of another class.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BACKGROUND = "background"
MAX_ID = 65535  # label images are at most mono16
MAX_NAME_CHARS = 1000  # refused before tokenising (a 77-token name is far shorter)


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
    """Class names with stable ids. Not thread-safe by itself: the owner serialises updates."""

    def __init__(self, background: bool = True):
        self.background = background
        self._ids: dict[str, int] = {}  # every name ever seen (casefolded) -> id
        self._next_id = 1
        self.snapshot = VocabularySnapshot((), (), background, 0)

    def assign(self, names: Sequence[str]) -> VocabularySnapshot:
        """Make `names` (already validated) the active vocabulary; returns the new snapshot."""
        ids: list[int] = []
        for name in names:
            key = name.casefold()
            if key not in self._ids:
                self._ids[key] = self._allocate(taken=set(ids) | set(self.snapshot.ids))
            ids.append(self._ids[key])
        self.snapshot = VocabularySnapshot(
            tuple(names), tuple(ids), self.background, self.snapshot.version + 1
        )
        return self.snapshot

    def carry_over(self, background: bool) -> Vocabulary:
        """A new, empty vocabulary that keeps this one's ids and version: after a reconfigure,
        names seen before get their ids back and the version keeps counting, so a consumer
        never sees an id reused for another name."""
        new = Vocabulary(background)
        new._ids, new._next_id = dict(self._ids), self._next_id
        new.snapshot = VocabularySnapshot((), (), background, self.snapshot.version)
        return new

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
