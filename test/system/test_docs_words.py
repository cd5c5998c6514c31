"""The user pages (README.md and doc/) speak of the package, not of how it was built: no work-log
phrases, issue numbers, commit hashes or dated changes. How CI runs and how things were
measured day by day belongs in doc/development.md, and the benchmark result files
(doc/benchmarks/) record the commands and commits that produced them; both are left out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "doc"
LEFT_OUT = (DOC / "development.md", DOC / "benchmarks")
PAGES = [ROOT / "README.md"] + [p for p in sorted(DOC.rglob("*.md"))
                                if not any(p == x or x in p.parents for x in LEFT_OUT)]
# What each pattern catches, then the pattern (case-insensitive).
WORK_LOG = {
    "a work-log name for the demo": r"\bmain job\b",
    "CI's stage name (the test/journeys/ folder may be named)": r"(?<![/\w])journeys?\b(?!/)",
    "CI's name for a set-up": r"README's set-up",
    "a where-it-ran marker": r"\[(?:run here|needs a distro)",
    "where the work ran": r"\bsimulated here\b|this machine's disk|\bprobably seen here\b"
                          r"|this project's (?:2-core )?machines|no GPU was available",
    "how the work was done": r"\bchecked by hand\b",
    "an issue number": r"\bissue \d+",
    "a commit hash": r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}\b",
    "a dated change": r"\b(?:before|until|since) \d{4}-\d{2}-\d{2}\b",
}
PATTERN = re.compile("|".join(f"(?P<p{i}>{p})" for i, p in enumerate(WORK_LOG.values())),
                     re.IGNORECASE)


def findings(text: str) -> list[str]:
    """'line N: <match> (<what it is>)' for every work-log phrase in `text`."""
    names = list(WORK_LOG)
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in PATTERN.finditer(line):
            what = names[int(m.lastgroup[1:])]
            out.append(f"line {n}: {m.group(0)!r} ({what})")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_pages_have_no_work_log_phrases(page):
    found = findings(page.read_text())
    assert not found, f"{page.relative_to(ROOT)}: " + "; ".join(found) + \
        " (move it to doc/development.md, or say it as a fact about the package)"


def test_the_patterns_catch_each_phrase_and_spare_plain_words():
    caught = ["the README's main job", "on the README's set-up", "the journeys ran",
              "step 2 [run here]", "[needs a distro]", "simulated here with rosdep",
              "file sizes on this machine's disk", "Probably seen here: a client",
              "on this project's 2-core machines", "no GPU was available to this work",
              "the launch file is checked by hand", "Issue 11 measured", "issue 30's storms",
              "on ea73dd4 the storms failed", "commit 8468e88",
              "Before 2026-12-03 the backend ignored it"]
    for text in caught:
        assert findings(text), text
    spared = ["test/journeys/test_journeys.py runs these lines", "journeys/ (the folder)",
              "sha256 " + "ab12" * 16, "rclpy issues #1142 and #1284", "ros2/ros2#1024",
              "Results of 2026-12-01 on a 2-core AMD EPYC", "a 448x448 frame", "cafe",
              "keeps discovery on this machine"]
    for text in spared:
        assert not findings(text), text
    assert DOC / "development.md" not in PAGES and (ROOT / "README.md") in PAGES
