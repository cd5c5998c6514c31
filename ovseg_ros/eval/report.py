"""metrics.json and results.md of one evaluation run.

Scores are percentages (mIoU, mAcc, aAcc and per-class values), as the paper reports them;
the accumulated confusion matrix is included, so every number can be recomputed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .classes import ClassList
from .metrics import scores
from .protocol import PAPER_MIOU, TITLES


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def build_metrics(dataset: str, matrix: np.ndarray, classes: ClassList, images: int,
                  split_images: int, deviations: list[str], configuration: dict,
                  timing: dict) -> dict:
    """The metrics.json content from the accumulated (C, C + 1) confusion matrix."""
    s = scores(matrix)
    miou = _pct(s["mIoU"])
    per_class = [
        {"index": i, "name": names[0], "names": list(names), "iou": _pct(s["iou"][i]),
         "acc": _pct(s["acc"][i]), "gt_pixels": s["gt_pixels"][i],
         "pred_pixels": s["pred_pixels"][i]}
        for i, names in enumerate(classes)
    ]
    return {
        "dataset": dataset,
        "title": TITLES[dataset],
        "mIoU": miou,
        "mAcc": _pct(s["mAcc"]),
        "aAcc": _pct(s["aAcc"]),
        "paper_mIoU": PAPER_MIOU[dataset],
        "difference": None if miou is None else miou - PAPER_MIOU[dataset],
        "images": images,
        "split_images": split_images,
        "complete": images == split_images,
        "paper_protocol": not deviations,
        "deviations": deviations,
        "per_class": per_class,
        "pixels": s["pixels"],
        "unlabelled_pixels": s["unlabelled_pixels"],
        "configuration": configuration,
        "timing": timing,
        "confusion_matrix": np.asarray(matrix).tolist(),
        "confusion_matrix_layout": "rows: ground-truth class; columns: predicted class, then "
                                   "one column of pixels left unlabelled; ignore pixels omitted",
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def comparable(metrics: dict) -> bool:
    """Whether a run can stand beside the paper's number: all images, the paper's protocol."""
    return bool(metrics["complete"] and metrics["paper_protocol"])


def results_markdown(m: dict) -> str:
    """A markdown summary: the run beside the paper, the setup, and per-class IoU."""
    cfg = m["configuration"]
    status = "comparable with the paper" if comparable(m) else "NOT comparable with the paper"
    lines = [
        f"# ovseg eval: {m['title']}",
        "",
        "| benchmark | images | mIoU (this run) | mIoU (paper) | difference |",
        "| --- | --- | --- | --- | --- |",
        f"| {m['title']} | {m['images']} / {m['split_images']} | {_fmt(m['mIoU'])} | "
        f"{m['paper_mIoU']:.1f} | {_fmt(m['difference'], 2)} |",
        "",
        f"This run is {status}"
        + (":" if not comparable(m) else "."),
    ]
    if not m["complete"]:
        lines.append(f"- only {m['images']} of the split's {m['split_images']} images")
    lines += [f"- {d}" for d in m["deviations"]]
    p = cfg["protocol"]
    lines += [
        "",
        f"Pixel accuracy {_fmt(m['aAcc'])}%, mean class accuracy {_fmt(m['mAcc'])}%.",
        f"Protocol: short side {p['short_side']} (long side at most {p['long_side']}), "
        f"{cfg['inference']['mode']} inference with {cfg['inference']['window']} px windows at "
        f"stride {cfg['inference']['stride']}, background rule "
        f"{'on' if cfg['inference']['background'] else 'off'}, ignore index {p['ignore_index']}.",
        f"Model {cfg['model']}; CLIP weights sha256 {cfg['clip_sha256']}; heads sha256 "
        f"{cfg['heads_sha256']}.",
        f"Device {cfg['device']}; precision {cfg['precision']}"
        + (f"; backend {cfg['backend']}" if cfg.get("backend") else "") + ".",
        f"Class names: {cfg['class_names']}.",
        "",
        "| index | class | IoU | accuracy | ground-truth pixels |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {c['index']} | {', '.join(c['names'])} | {_fmt(c['iou'])} | {_fmt(c['acc'])} "
              f"| {c['gt_pixels']} |" for c in m["per_class"]]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def metrics_json(metrics: dict) -> str:
    """Indented JSON with one line per per-class entry and per confusion-matrix row (a
    171-class matrix would otherwise take one line per number)."""
    compact = ("per_class", "confusion_matrix")
    body = json.dumps({k: v for k, v in metrics.items() if k not in compact}, indent=1)
    rows = {k: ",\n  ".join(json.dumps(r) for r in metrics[k]) for k in compact if k in metrics}
    tail = ",\n".join(f' "{k}": [\n  {v}\n ]' for k, v in rows.items())
    return body[:-2] + (",\n" + tail if tail else "") + "\n}\n"


def write_reports(output: Path, metrics: dict) -> None:
    """<output>/metrics.json and <output>/results.md, each replaced atomically."""
    output.mkdir(parents=True, exist_ok=True)
    _write(output / "metrics.json", metrics_json(metrics))
    _write(output / "results.md", results_markdown(metrics))
