"""Hydra's label-space files parsed the way Hydra and semantic_inference parse them
(helpers/consumers.py: a plain comma split, std::stoi, a colour -> label map): every name the
node accepts, every id it can hand out."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.consumers import ConsumerRejects, getline_split, hydra_colour_map, stoi

from ovseg_ros.core.vocabulary import MAX_ID, validate_prompts
from ovseg_ros.io.labelspace import colour_map_csv, csv_name, write_label_space
from ovseg_ros.viz import colour_for_id, palette

AWKWARD = ["salt, pepper", 'say "hi"', "chair", "a;b", "стул", "x,,y", '"quoted, too"',
           "tab\there", "end,"]


def test_stoi_and_getline_behave_like_the_cpp_library():
    assert stoi(" 12") == 12 and stoi("+7") == 7 and stoi("-3") == -3 and stoi("12abc") == 12
    for bad in ("", "abc", " pepper\"", "--1", "2147483648"):
        with pytest.raises(ConsumerRejects):
            stoi(bad)
    assert getline_split("a,b,") == ["a", "b"] and getline_split(",a") == ["", "a"]
    assert getline_split("") == [] and getline_split("a,,b") == ["a", "", "b"]


def test_what_the_csv_module_writes_breaks_hydra():
    """The quoting of Python's csv module (the former writer): Hydra's plain split reads the
    second half of the name as the red value and std::stoi throws."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "red", "green", "blue", "alpha", "id"])
    writer.writerow(["salt, pepper", 1, 2, 3, 255, 1])
    with pytest.raises(ConsumerRejects, match="7 fields"):
        hydra_colour_map(out.getvalue())
    with pytest.raises(ConsumerRejects, match="twice|Hydra keeps one"):
        hydra_colour_map("name,red,green,blue,alpha,id\na,1,2,3,255,1\nb,1,2,3,255,2\n")


def test_names_hydra_cannot_split_are_written_comma_free(tmp_path):
    names = validate_prompts(AWKWARD)  # all accepted (a tab is whitespace: one space)
    ids = list(range(1, len(names) + 1))
    space_path, colours_path = write_label_space(tmp_path / "hydra", names, ids, True)
    text = colours_path.read_text(encoding="utf-8")
    colour_map = hydra_colour_map(text)
    assert sorted(colour_map.values()) == [0, *ids]
    for colour, label in colour_map.items():
        assert colour == (*colour_for_id(label), 255)
    # the CSV's own name column: comma-free, and what a CSV reader reads is the same
    rows = list(csv.reader(io.StringIO(text)))
    assert all(len(r) == 6 for r in rows)
    assert [r[0] for r in rows[2:]] == [csv_name(n) for n in names]
    assert rows[2][0] == "salt; pepper" and rows[3][0] == "say 'hi'"
    # the YAML keeps the true names and names the CSV where Hydra's label space reads it
    space = yaml.safe_load(space_path.read_text(encoding="utf-8"))
    assert [e["name"] for e in space["label_names"]] == ["background", *names]
    assert Path(space["semantic_colormap_file"]).is_absolute()
    assert Path(space["semantic_colormap_file"]) == colours_path.resolve()
    assert space["total_semantic_labels"] == max(ids) + 1


def test_every_id_the_node_can_hand_out_has_its_own_colour():
    table = palette(MAX_ID + 1)
    packed = (table[:, 0].astype(int) << 16) | (table[:, 1].astype(int) << 8) | table[:, 2]
    assert len(np.unique(packed)) == MAX_ID + 1  # ids 0..65535, all different
    assert (packed[1:] != packed[0]).all()  # none is id 0's (black)
    ids = list(range(1, MAX_ID + 1))
    colour_map = hydra_colour_map(colour_map_csv([f"c{i}" for i in ids], ids, False))
    assert len(colour_map) == MAX_ID + 1
    with pytest.raises(ValueError, match="65535"):
        palette(MAX_ID + 2)


def test_the_first_ids_keep_their_colours():
    """Ids 1..64 are the greedy CIELAB picks, far apart; 65..202 keep the golden-ratio hue walk
    they had (203 is the first whose walk colour a lower id holds: it gets a spare one)."""
    from ovseg_ros.viz.overlay import _golden_colours

    assert colour_for_id(0) == (0, 0, 0)
    first = palette(65)[1:].astype(int)
    gaps = np.linalg.norm(first[:, None] - first[None], axis=2) + 1e9 * np.eye(64)
    assert gaps.min() > 30
    walk = _golden_colours(np.arange(65, 204))
    np.testing.assert_array_equal(palette(203)[65:], walk[:-1])
    assert tuple(int(v) for v in walk[-1]) == colour_for_id(44) != colour_for_id(203)
