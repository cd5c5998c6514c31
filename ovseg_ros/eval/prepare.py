"""Converting COCO-Stuff 164k's stuffthingmaps into the annotations the benchmarks read:
`python -m ovseg_ros.eval.prepare {coco_stuff,coco_object} ROOT`.

The same files mmsegmentation's tools/dataset_converters/coco_stuff164k.py (coco_stuff,
*_labelTrainIds.png) and the CLIP-DINOiser authors' tools/convert_coco_object.py (coco_object,
*_instanceTrainIds.png) write, without their mmcv dependency. The value table is a fact of the
dataset: stuffthingmaps store COCO category id - 1; the 80 thing classes are the values
0 .. 90 except the 11 unused ones, the 91 stuff classes are 91 .. 181, 255 is unlabelled.
  coco_stuff:  thing -> its rank 0 .. 79, stuff v -> v - 11 (80 .. 170), 255 stays 255.
  coco_object: thing -> rank + 1 (1 .. 80); stuff and unlabelled -> 0 (background).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import LAYOUTS, DatasetError, find_root

UNUSED_THING_VALUES = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
THING_VALUES = tuple(v for v in range(91) if v not in UNUSED_THING_VALUES)  # 80 values
STUFF_VALUES = tuple(range(91, 182))  # 91 values


def coco_table(dataset: str) -> np.ndarray:
    """(256,) uint8 table: stuffthingmap value -> the annotation value of `dataset`."""
    if dataset == "coco_stuff":
        table = np.full(256, 255, np.uint8)
        table[list(THING_VALUES)] = np.arange(80)
        table[list(STUFF_VALUES)] = np.arange(80, 171)
    elif dataset == "coco_object":
        table = np.zeros(256, np.uint8)
        table[list(THING_VALUES)] = np.arange(1, 81)
    else:
        raise ValueError(f"no COCO conversion for {dataset!r}")
    return table


def convert_coco(dataset: str, root: str | Path, overwrite: bool = False) -> int:
    """Write <id><suffix> beside every stuffthingmap <id>.png of the val2017 annotations under
    `root`; existing files are kept unless `overwrite`. Returns how many files were written."""
    layout = LAYOUTS[dataset]
    base = find_root(dataset, root)
    folder = base / layout.label_dir
    if not folder.is_dir():
        raise DatasetError(f"{dataset}: missing folder {folder} (unzip "
                           "stuffthingmaps_trainval2017.zip into annotations/)")
    table = coco_table(dataset)
    suffixes = ("_labelTrainIds.png", "_instanceTrainIds.png")
    sources = sorted(p for p in folder.glob("*.png") if not p.name.endswith(suffixes))
    if not sources:
        raise DatasetError(f"{dataset}: no stuffthingmap PNGs (<id>.png) in {folder}")
    written = 0
    for src in sources:
        target = folder / f"{src.stem}{layout.label_suffix}"
        if target.exists() and not overwrite:
            continue
        with Image.open(src) as img:
            raw = np.array(img)
        if raw.ndim != 2:
            raise DatasetError(f"{dataset}: {src} is not a single-channel stuffthingmap")
        tmp = target.with_name(f".{target.name}.tmp")
        Image.fromarray(table[raw]).save(tmp, format="PNG")
        os.replace(tmp, target)
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ovseg_ros.eval.prepare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["coco_stuff", "coco_object"])
    parser.add_argument("root", help="the coco_stuff164k folder (or the folder holding it)")
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing files")
    args = parser.parse_args(argv)
    try:
        n = convert_coco(args.dataset, args.root, args.overwrite)
    except DatasetError as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.dataset}: wrote {n} annotation files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
