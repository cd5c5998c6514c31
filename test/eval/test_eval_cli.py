"""`ovseg eval` end to end on synthetic VOC data with the tiny model: metrics.json against an
independent recomputation from the saved predictions, resuming, refusing mixed settings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers.tiny_models import tiny_files
from PIL import Image

from ovseg_ros.cli.main import main
from ovseg_ros.core import Segmenter
from ovseg_ros.eval.classes import CLASS_LISTS
from ovseg_ros.eval.datasets import list_samples
from ovseg_ros.eval.synthetic import make_synthetic
from ovseg_ros.eval.table import main as table_main


@pytest.fixture(scope="module")
def model_args(tmp_path_factory):
    name, clip, heads = tiny_files(tmp_path_factory.mktemp("eval_model"))
    return ["--model", name, "--clip-weights", str(clip), "--heads", str(heads),
            "--device", "cpu", "--no-progress"]


def _eval(dataset, root, out, model_args, *extra):
    return main(["eval", "--dataset", dataset, "--root", str(root), "-o", str(out), *extra,
                 *model_args])


def _independent_miou(gt_files, pred_files, classes, reduce_zero_label=False):
    """mIoU (%) from label PNGs with per-class boolean masks, summed over images."""
    inter = np.zeros(classes)
    union = np.zeros(classes)
    for g, p in zip(gt_files, pred_files, strict=True):
        gt = np.array(Image.open(g)).astype(int)
        pred = np.array(Image.open(p)).astype(int)
        if reduce_zero_label:
            gt = np.where((gt == 0) | (gt == 255), 255, gt - 1)
            pred = np.where(pred == 255, 255, pred - 1)
        valid = gt != 255
        for c in range(classes):
            inter[c] += np.sum((gt == c) & (pred == c) & valid)
            union[c] += np.sum(((gt == c) | (pred == c)) & valid)
    present = union > 0
    return 100 * float(np.mean(inter[present] / union[present])), inter, union


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["voc21", "voc20"])
def test_eval_end_to_end(tmp_path, model_args, dataset, capsys):
    s = make_synthetic(dataset, tmp_path / "data", count=4, size=(64, 96), seed=1, nested=True)
    out = tmp_path / "out"
    assert _eval(dataset, s.root, out, model_args, "--save-predictions") == 0
    m = json.loads((out / "metrics.json").read_text())
    samples = list_samples(dataset, s.root)
    preds = [out / "predictions" / f"{x.id}.png" for x in samples]
    assert sorted(p.name for p in (out / "predictions").iterdir()) == sorted(p.name for p in preds)
    classes = 21 if dataset == "voc21" else 20
    miou, inter, union = _independent_miou([x.label for x in samples], preds, classes,
                                           reduce_zero_label=dataset == "voc20")
    assert m["mIoU"] == pytest.approx(miou, abs=1e-9)
    assert 0 < miou < 100  # seeded data and model chosen so the comparison is not trivial
    assert [c["iou"] is None for c in m["per_class"]] == list(union == 0)
    assert m["images"] == m["split_images"] == 4 and m["complete"] and m["paper_protocol"]
    assert m["paper_mIoU"] == {"voc21": 62.1, "voc20": 80.9}[dataset]
    cfg = m["configuration"]
    assert cfg["inference"]["mode"] == "slide" and cfg["precision"] == "fp32"
    assert cfg["inference"]["background"] is (dataset == "voc21")
    assert len(cfg["clip_sha256"]) == 64 and len(cfg["heads_sha256"]) == 64
    assert cfg["protocol"]["short_side"] == 448 and "torch" in cfg["environments"][0]
    assert np.array(m["confusion_matrix"]).shape == (classes, classes + 1)
    assert "| VOC" in (out / "results.md").read_text()
    capsys.readouterr()
    assert table_main([str(out)]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert row == f"| ovseg_ros | {m['mIoU']:.1f} | {m['mIoU']:.1f} |"

    # The saved predictions as ground truth: every pixel must now count as correct, which
    # holds only if ids, class indices and the on-disk encoding line up everywhere.
    for x, p in zip(samples, preds, strict=True):
        shutil.copy(p, x.label)
    assert _eval(dataset, s.root, tmp_path / "self", model_args) == 0
    m = json.loads((tmp_path / "self" / "metrics.json").read_text())
    assert m["mIoU"] == pytest.approx(100.0) and m["aAcc"] == pytest.approx(100.0)
    assert sum(c["iou"] is not None for c in m["per_class"]) >= 2


@pytest.mark.slow
def test_resume_after_interrupt(tmp_path, model_args, monkeypatch, capsys):
    s = make_synthetic("voc21", tmp_path / "data", count=5, seed=2)
    reference = tmp_path / "reference"
    assert _eval("voc21", s.root, reference, model_args) == 0
    expected = json.loads((reference / "metrics.json").read_text())

    calls = []
    original = Segmenter.segment

    def interrupted(self, rgb, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, rgb, *a, **k)

    monkeypatch.setattr(Segmenter, "segment", interrupted)
    out = tmp_path / "out"
    assert _eval("voc21", s.root, out, model_args) == 130
    assert "Run the same command again" in capsys.readouterr().err
    assert not (out / "metrics.json").exists()
    lines = (out / "state" / "progress.jsonl").read_text().splitlines()
    assert len(lines) == 2
    # A run killed while writing leaves half a line: it is dropped and that image redone.
    with (out / "state" / "progress.jsonl").open("a") as f:
        f.write('{"id": "2008_0000')
    calls.clear()

    def counted(self, rgb, *a, **k):
        calls.append(1)
        return original(self, rgb, *a, **k)

    monkeypatch.setattr(Segmenter, "segment", counted)
    assert _eval("voc21", s.root, out, model_args) == 0
    assert len(calls) == 3  # only the images not done before
    m = json.loads((out / "metrics.json").read_text())
    assert m["mIoU"] == expected["mIoU"]
    assert m["confusion_matrix"] == expected["confusion_matrix"]
    assert m["timing"]["images_this_session"] == 3


@pytest.mark.slow
def test_resume_refuses_other_settings_and_extends_limit(tmp_path, model_args, capsys):
    s = make_synthetic("voc21", tmp_path / "data", count=4, seed=3)
    out = tmp_path / "out"
    assert _eval("voc21", s.root, out, model_args, "--limit", "2") == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["images"], m["split_images"], m["complete"]) == (2, 4, False)
    assert "NOT comparable" in (out / "results.md").read_text()
    capsys.readouterr()
    assert _eval("voc21", s.root, out, model_args, "--mode", "whole") == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "inference.mode: 'slide' -> 'whole'" in err
    assert _eval("voc21", s.root, out, model_args, "--input-size", "224") == 2
    assert "inference.input_size: 448 -> 224" in capsys.readouterr().err
    assert _eval("voc21", s.root, out, model_args) == 0  # same settings, the rest of the split
    m = json.loads((out / "metrics.json").read_text())
    assert (m["images"], m["complete"], m["timing"]["images_this_session"]) == (4, True, 2)
    # Asking for predictions later redoes the images that have none; the numbers stay.
    assert _eval("voc21", s.root, out, model_args, "--save-predictions") == 0
    again = json.loads((out / "metrics.json").read_text())
    assert len(list((out / "predictions").glob("*.png"))) == 4
    assert again["timing"]["images_this_session"] == 4
    assert again["confusion_matrix"] == m["confusion_matrix"]


def test_eval_errors_are_one_line(tmp_path, model_args, capsys):
    assert _eval("voc21", tmp_path / "none", tmp_path / "o", model_args) == 2
    assert "not a folder" in capsys.readouterr().err
    s = make_synthetic("ade20k", tmp_path / "ade", count=2)
    assert _eval("voc21", s.root, tmp_path / "o", model_args) == 2
    err = capsys.readouterr().err
    assert "missing folder" in err and "JPEGImages" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:  # keyframes are not part of the protocol
        _eval("ade20k", s.root, tmp_path / "o", model_args, "--keyframe-every-n", "2")
    assert exit_.value.code == 2 and "--keyframe-every-n" in capsys.readouterr().err
    bad = tmp_path / "names.txt"
    bad.write_text("wall\n")
    assert _eval("ade20k", s.root, tmp_path / "o", model_args, "--class-names", str(bad)) == 2
    assert "lists 1 classes; this dataset has 150" in capsys.readouterr().err


def test_class_names_file_with_synonyms(tmp_path, model_args):
    s = make_synthetic("voc21", tmp_path / "data", count=2, seed=4)
    names = tmp_path / "voc21.txt"
    names.write_text("background, sky, wall\n" + "\n".join(
        ", ".join(c) + (", kitty" if c == ("cat",) else "") for c in CLASS_LISTS["voc21"][1:]))
    out = tmp_path / "out"
    assert _eval("voc21", s.root, out, model_args, "--class-names", str(names)) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["configuration"]["prompts"] == 20 + 2 + 1  # 20 classes, sky, wall, kitty
    assert m["per_class"][0]["names"] == ["background", "sky", "wall"]
    assert not m["paper_protocol"] and "class names from" in m["deviations"][0]
