"""Small synthetic datasets in each benchmark's on-disk layout, with known ground truth.

For tests and for trying `ovseg eval` without the real data: deterministic for a seed, a few
images with rectangles of random classes on a background class and ignore-index borders, the
annotations written the way the real files are (VOC's palette PNGs, 0 = unlabelled where the
layout reduces zero labels, Cityscapes' city folders, COCO's stuffthingmaps beside the
converted annotations). The returned ground truth is in evaluation indices, independent of the
reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .datasets import LAYOUTS, Layout
from .prepare import STUFF_VALUES, THING_VALUES
from .protocol import IGNORE_INDEX, get_protocol


@dataclass(frozen=True)
class SyntheticSet:
    """root: the folder to pass as --root; ids: image ids in the order the split lists them;
    labels: id -> ground truth (H, W) uint8 in evaluation indices (255 = ignore)."""

    root: Path
    ids: tuple[str, ...]
    labels: dict[str, np.ndarray]


def voc_palette() -> list[int]:
    """The 256-colour palette of VOC's annotation PNGs (index bits spread over R, G, B)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def _ground_truth(rng: np.random.Generator, size: tuple[int, int], classes: int,
                  ignore_borders: bool) -> np.ndarray:
    h, w = size
    gt = np.full((h, w), rng.integers(0, classes), dtype=np.uint8)
    for _ in range(3):
        y0, x0 = int(rng.integers(0, h - h // 3)), int(rng.integers(0, w - w // 3))
        y1, x1 = y0 + int(rng.integers(h // 4, h // 2)), x0 + int(rng.integers(w // 4, w // 2))
        if ignore_borders:  # VOC-style 255 outline around the object
            gt[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1] = IGNORE_INDEX
        gt[y0:y1, x0:x1] = rng.integers(0, classes)
    return gt


def _picture(rng: np.random.Generator, gt: np.ndarray) -> np.ndarray:
    colours = np.random.default_rng(7).integers(0, 256, (256, 3), dtype=np.uint8)
    noise = rng.integers(-12, 13, gt.shape + (3,))
    return np.clip(colours[gt].astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _write_label(path: Path, raw: np.ndarray, palette: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(raw)  # mode L
    if palette:
        img.putpalette(voc_palette())  # mode P with the values kept as indices
    img.save(path)


def _stuffthingmap(name: str, gt: np.ndarray) -> np.ndarray:
    """A COCO stuffthingmap (category id - 1, 255 unlabelled) that converts to `gt`."""
    things, stuff = np.array(THING_VALUES), np.array(STUFF_VALUES)
    if name == "coco_stuff":
        raw = np.where(gt < 80, things[np.minimum(gt, 79)], stuff[np.clip(gt - 80, 0, 90)])
        return np.where(gt == IGNORE_INDEX, IGNORE_INDEX, raw).astype(np.uint8)
    # COCO-Object's background is stuff or unlabelled: both, in alternate columns.
    background = np.where(np.arange(gt.shape[1]) % 2 == 0, IGNORE_INDEX, stuff[29])
    raw = np.where(gt > 0, things[np.maximum(gt.astype(np.int16) - 1, 0)], background[None, :])
    return raw.astype(np.uint8)


def _relative_ids(name: str, count: int) -> list[str]:
    if name == "cityscapes":
        cities = ("frankfurt", "lindau")
        return [f"{cities[i % 2]}/{cities[i % 2]}_{i:06d}_000019" for i in range(count)]
    if name.startswith("coco"):
        return [f"{139 + 250 * i:012d}" for i in range(count)]
    if name == "ade20k":
        return [f"ADE_val_{i + 1:08d}" for i in range(count)]
    return [f"2008_{i * 7 + 3:06d}" for i in range(count)]


def make_synthetic(name: str, root: str | Path, count: int = 3, size: tuple[int, int] = (48, 64),
                   seed: int = 0, nested: bool = False) -> SyntheticSet:
    """Write `count` images of size (H, W) `size` in the layout of dataset `name` under `root`.

    nested: put the layout in its standard sub-folder (e.g. VOCdevkit/VOC2012) of `root`, as
    in mmsegmentation's data folder. Returns where it is and the ground truth.
    """
    layout: Layout = LAYOUTS[name]
    classes = get_protocol(name).num_classes
    rng = np.random.default_rng(seed)
    root = Path(root)
    base = root / layout.roots[-1] if nested else root
    # With a split file, one more image that the split leaves out: the reader must skip it.
    rel_ids = _relative_ids(name, count + 1 if layout.split else count)
    labels: dict[str, np.ndarray] = {}
    for k, rel in enumerate(rel_ids):
        gt = _ground_truth(rng, size, classes, ignore_borders=name.startswith("voc"))
        image_path = base / layout.image_dir / f"{rel}{layout.image_suffix}"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image_path), cv2.cvtColor(_picture(rng, gt), cv2.COLOR_RGB2BGR))
        if k == count:
            continue
        label_path = base / layout.label_dir / f"{rel}{layout.label_suffix}"
        _write_label(label_path, layout.encode(gt), palette=name.startswith("voc"))
        if name.startswith("coco"):  # the stuffthingmap the annotation was converted from
            _write_label(base / layout.label_dir / f"{rel}.png", _stuffthingmap(name, gt),
                         palette=False)
        if name == "cityscapes":  # another file of the real layout, not to be read
            _write_label(base / layout.label_dir / f"{rel}_gtFine_labelIds.png",
                         rng.integers(0, 34, size, dtype=np.uint8), palette=False)
        labels[Path(rel).name] = gt
    ids = rel_ids[:count]
    if layout.split:
        ids = ids[::-1]  # not sorted: the reader must keep the split file's order
        split = base / layout.split
        split.parent.mkdir(parents=True, exist_ok=True)
        split.write_text("".join(f"{i}\n" for i in ids))
    else:
        ids = sorted(ids)
    return SyntheticSet(root, tuple(Path(i).name for i in ids), labels)


def main(argv: list[str] | None = None) -> int:
    """`python -m ovseg_ros.eval.synthetic NAME DIR`: write a synthetic set to try the harness."""
    import argparse

    from .protocol import DATASETS

    parser = argparse.ArgumentParser(prog="python -m ovseg_ros.eval.synthetic",
                                     description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=3, help="images (default %(default)s)")
    parser.add_argument("--size", type=int, nargs=2, default=(375, 500), metavar=("H", "W"),
                        help="image size (default 375 500, a typical VOC image)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.count < 1 or min(args.size) < 8:
        parser.error("need --count >= 1 and a size of at least 8 x 8")
    made = make_synthetic(args.dataset, args.folder, args.count, tuple(args.size), args.seed)
    print(f"{args.dataset}: {len(made.ids)} synthetic images in {made.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
