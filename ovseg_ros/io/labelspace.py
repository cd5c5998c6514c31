"""Hydra's label-space files for a vocabulary, so Hydra (MIT-SPARK) reads ovseg's label image
with no hand-written config.

Formats as Hydra reads them (github.com/MIT-SPARK/Hydra: src/common/label_space_config.cpp,
global_info.cpp, semantic_color_map.cpp, utils/csv_reader.cpp):

- `<name>_label_space.yaml`: `total_semantic_labels` (label ids index Hydra's likelihood vector,
  so max id + 1), `semantic_colormap_file` (the absolute path of the CSV below: the key Hydra's
  label-space config reads its colour map from), `dynamic_labels`, `invalid_labels`,
  `object_labels`, `surface_places_labels` and `label_names` (a list of `{label: id, name:
  text}`, the true class names).
- `<name>_colormap.csv`: header `name,red,green,blue,alpha,id`, one row per label. Hydra splits
  each line at every comma, with no quoting, and converts red, green, blue, alpha and id with
  `std::stoi`; semantic_inference's recolouring drops a row that does not split into exactly
  6 fields. Neither reads the name column, so it holds `csv_name(name)`: the class name with
  `,` -> `;` and `"` -> `'` (line breaks cannot occur: names are normalised). The exact name
  stays in the YAML, ~/label_map and LabelInfo.

Id 0 (background / unlabelled) is Hydra's invalid label. Every class is listed as an object
label (an open vocabulary names things, not structure): edit `object_labels` and
`surface_places_labels` for a scene's walls and floors. Ids not held by the vocabulary (stable
ids of removed names) are counted in `total_semantic_labels` but not named.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from ovseg_ros.viz.overlay import colour_for_id

UNLABELLED = "unlabelled"
CSV_HEADER = ("name", "red", "green", "blue", "alpha", "id")
# Characters a plain comma split (Hydra's reader) or a CSV reader would take for structure.
_CSV_REPLACEMENTS = str.maketrans({",": ";", '"': "'", "\n": " ", "\r": " "})


def _entries(names: Sequence[str], ids: Sequence[int], background: bool) -> list[tuple[int, str]]:
    return [(0, "background" if background else UNLABELLED)] + [
        (int(i), str(n)) for i, n in zip(ids, names, strict=True)]


def csv_name(name: str) -> str:
    """The class name as the colour CSV writes it: no comma, double quote or line break, so
    a plain comma split and an RFC 4180 reader both see the same 6 fields."""
    return name.translate(_CSV_REPLACEMENTS)


def label_space(names: Sequence[str], ids: Sequence[int], background: bool,
                colormap_file: str = "") -> dict:
    """The label-space YAML content for a vocabulary (names aligned with their ids);
    `colormap_file`: the CSV's path for `semantic_colormap_file` (left out when empty)."""
    entries = _entries(names, ids, background)
    space: dict = {"total_semantic_labels": max(i for i, _ in entries) + 1}
    if colormap_file:
        space["semantic_colormap_file"] = colormap_file
    space.update({
        "dynamic_labels": [],
        "invalid_labels": [0],
        "object_labels": sorted(int(i) for i in ids),
        "surface_places_labels": [],
        "label_names": [{"label": i, "name": n} for i, n in entries],
    })
    return space


def colour_map_csv(names: Sequence[str], ids: Sequence[int], background: bool) -> str:
    """The colour-map CSV text: the same colours as ~/label_map and the overlay."""
    lines = [",".join(CSV_HEADER)]
    for cid, name in _entries(names, ids, background):
        lines.append(",".join([csv_name(name), *map(str, colour_for_id(cid)), "255", str(cid)]))
    return "\n".join(lines) + "\n"


def write_label_space(directory: Path, names: Sequence[str], ids: Sequence[int],
                      background: bool, name: str = "ovseg") -> tuple[Path, Path]:
    """Write `<name>_colormap.csv`, then `<name>_label_space.yaml` (naming the CSV by its
    absolute path) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    space = directory / f"{name}_label_space.yaml"
    colours = directory / f"{name}_colormap.csv"
    _replace(colours, colour_map_csv(names, ids, background))
    content = label_space(names, ids, background, str(colours.resolve()))
    _replace(space, "---\n" + yaml.safe_dump(content, sort_keys=False, default_flow_style=None,
                                             allow_unicode=True))
    return space, colours


def _replace(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
