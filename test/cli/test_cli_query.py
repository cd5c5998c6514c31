"""`ovseg segment --query` and `ovseg labelspace` (Hydra's label-space files, parsed back)."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import yaml
from helpers.cli_inputs import picture

from ovseg_ros.cli.main import main
from ovseg_ros.viz.overlay import colour_for_id


def test_segment_writes_relevance_images(tmp_path, model_args):  # noqa: F811
    img = tmp_path / "room.png"
    cv2.imwrite(str(img), picture(1))
    out = tmp_path / "out"
    rc = main(["segment", str(img), "--prompts", "chair,person", "-o", str(out),
               "--query", "red mug", "--query", "CHAIR", *model_args])
    assert rc == 0
    report = json.loads((out / "room.json").read_text())
    mug, chair = report["queries"]
    assert mug["phrase"] == "red mug" and mug["class_id"] is None
    assert chair["class_id"] == 1  # a vocabulary name is that class
    assert report["label_ids"] == {"background": 0, "chair": 1, "person": 2}  # unchanged
    rel = cv2.imread(str(out / mug["file"]), cv2.IMREAD_UNCHANGED)
    assert rel.shape == (72, 96) and rel.dtype == np.uint16
    assert abs(rel.max() / 65535.0 - mug["score"]) < 1e-4
    u, v = mug["peak_uv"]
    assert rel[v, u] == rel.max()


def test_segment_refuses_a_bad_query_before_any_frame(tmp_path, model_args, capsys):  # noqa: F811
    img = tmp_path / "room.png"
    cv2.imwrite(str(img), picture(1))
    out = tmp_path / "out"
    assert main(["segment", str(img), "--prompts", "a", "-o", str(out), "--query", " ",
                 *model_args]) == 2
    assert "empty" in capsys.readouterr().err
    assert not (out / "room.json").exists()


def test_labelspace_files_parse_back(tmp_path):
    out = tmp_path / "hydra"
    assert main(["labelspace", "--prompts", "chair, red mug,table", "-o", str(out)]) == 0
    space = yaml.safe_load((out / "ovseg_label_space.yaml").read_text())
    assert space["total_semantic_labels"] == 4 and space["invalid_labels"] == [0]
    assert space["object_labels"] == [1, 2, 3] and space["dynamic_labels"] == []
    assert space["label_names"] == [{"label": 0, "name": "background"},
                                    {"label": 1, "name": "chair"},
                                    {"label": 2, "name": "red mug"},
                                    {"label": 3, "name": "table"}]
    with open(out / "ovseg_colormap.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "red", "green", "blue", "alpha", "id"]
    assert [(r["name"], int(r["id"])) for r in rows] == [
        ("background", 0), ("chair", 1), ("red mug", 2), ("table", 3)]
    for r in rows:
        assert (int(r["red"]), int(r["green"]), int(r["blue"])) == colour_for_id(int(r["id"]))
        assert int(r["alpha"]) == 255
    assert main(["labelspace", "--prompts", "a,A", "-o", str(out)]) == 2  # duplicates
