"""Hydra's label-space files for a vocabulary, so Hydra (MIT-SPARK) reads ovseg's label image
with no hand-written config.

Formats as Hydra reads them (github.com/MIT-SPARK/Hydra, config/label_spaces/*.yaml, parsed by
src/common/label_space_config.cpp; colour maps as in Hydra-ROS's config/color/*.csv):

- `<name>_label_space.yaml`: `total_semantic_labels` (label ids index Hydra's likelihood vector,
  so max id + 1), `dynamic_labels`, `invalid_labels`, `object_labels`, `surface_places_labels`
  and `label_names` (a list of `{label: id, name: text}`).
- `<name>_colormap.csv`: header `name,red,green,blue,alpha,id`, one row per label.

Id 0 (background / unlabelled) is Hydra's invalid label. Every class is listed as an object
label (an open vocabulary names things, not structure): edit `object_labels` and
`surface_places_labels` for a scene's walls and floors. Ids skipped by the vocabulary (removed
names keep their ids reserved) are counted in `total_semantic_labels` but not named.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import yaml

from ovseg_ros.viz.overlay import colour_for_id

UNLABELLED = "unlabelled"


def label_space(names: Sequence[str], ids: Sequence[int], background: bool) -> dict:
    """The label-space YAML content for a vocabulary (names aligned with their ids)."""
    entries = [(0, "background" if background else UNLABELLED)] + [
        (int(i), str(n)) for i, n in zip(ids, names, strict=True)]
    return {
        "total_semantic_labels": max(i for i, _ in entries) + 1,
        "dynamic_labels": [],
        "invalid_labels": [0],
        "object_labels": sorted(int(i) for i in ids),
        "surface_places_labels": [],
        "label_names": [{"label": i, "name": n} for i, n in entries],
    }


def colour_map_csv(names: Sequence[str], ids: Sequence[int], background: bool) -> str:
    """The colour-map CSV text: the same colours as ~/label_map and the overlay."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "red", "green", "blue", "alpha", "id"])
    rows = [(0, "background" if background else UNLABELLED)] + [
        (int(i), str(n)) for i, n in zip(ids, names, strict=True)]
    for cid, name in rows:
        writer.writerow([name, *colour_for_id(cid), 255, cid])
    return out.getvalue()


def write_label_space(directory: Path, names: Sequence[str], ids: Sequence[int],
                      background: bool, name: str = "ovseg") -> tuple[Path, Path]:
    """Write `<name>_label_space.yaml` and `<name>_colormap.csv` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    space = directory / f"{name}_label_space.yaml"
    colours = directory / f"{name}_colormap.csv"
    _replace(space, "---\n" + yaml.safe_dump(label_space(names, ids, background),
                                             sort_keys=False, default_flow_style=None))
    _replace(colours, colour_map_csv(names, ids, background))
    return space, colours


def _replace(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
