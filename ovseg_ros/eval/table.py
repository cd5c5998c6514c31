"""The paper's table from several runs: `python -m ovseg_ros.eval.table OUT_DIR [...]`.

Reads metrics.json files (or folders holding them, searched one level deep) and prints a
markdown table with one column per benchmark in the paper's order, this project's row beside
the paper's, and the mean over the benchmarks present. Runs that are not comparable with the
paper (a subset of images, or settings other than the paper's) are marked with an asterisk.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .protocol import DATASETS, PAPER_MIOU, TITLES
from .report import comparable


def find_metrics(paths: list[str]) -> list[Path]:
    """metrics.json files named directly or found in the given folders (one level deep)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(p.glob("metrics.json")) + sorted(p.glob("*/metrics.json"))
    return found


def paper_table(runs: list[dict]) -> str:
    """Markdown: benchmarks as columns, rows "ovseg_ros" and "paper", plus their means."""
    by_name: dict[str, dict] = {}
    for m in runs:
        if m["dataset"] in by_name:
            raise ValueError(f"two runs of {m['dataset']}: name one of them")
        by_name[m["dataset"]] = m
    names = [d for d in DATASETS if d in by_name]
    if not names:
        raise ValueError("no metrics.json found")
    ours, marks = [], []
    for d in names:
        m = by_name[d]
        ours.append(m["mIoU"])
        marks.append("" if comparable(m) else "*")
    head = "| | " + " | ".join(TITLES[d] for d in names) + " | mean |"
    rule = "| --- " * (len(names) + 2) + "|"
    valid = [v for v in ours if v is not None]
    mean = sum(valid) / len(valid) if len(valid) == len(ours) else None
    row = "| ovseg_ros | " + " | ".join(
        ("n/a" if v is None else f"{v:.1f}") + k for v, k in zip(ours, marks, strict=True))
    row += f" | {'n/a' if mean is None else f'{mean:.1f}'}{'*' if any(marks) else ''} |"
    paper = [PAPER_MIOU[d] for d in names]
    paper_row = ("| paper | " + " | ".join(f"{v:.1f}" for v in paper)
                 + f" | {sum(paper) / len(paper):.1f} |")
    lines = [head, rule, row, paper_row]
    if any(marks):
        lines += ["", "\\* not comparable with the paper: "
                  + "; ".join(f"{TITLES[d]}: " + _why(by_name[d]) for d, k in
                              zip(names, marks, strict=True) if k)]
    return "\n".join(lines) + "\n"


def _why(m: dict) -> str:
    reasons = [] if m["complete"] else [f"{m['images']} of {m['split_images']} images"]
    return ", ".join(reasons + m["deviations"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ovseg_ros.eval.table",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="metrics.json files or folders of runs")
    args = parser.parse_args(argv)
    try:
        runs = [json.loads(p.read_text()) for p in find_metrics(args.paths)]
        print(paper_table(runs), end="")
    except (OSError, ValueError, KeyError) as exc:
        print(f"ovseg eval table: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
