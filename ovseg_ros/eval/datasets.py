"""Reading the benchmarks in the on-disk layouts mmsegmentation's preparation tools leave.

Each layout names the image folder, the annotation folder, an optional split file and the
file-name suffixes; `list_samples` checks the layout and lists the validation images, and
`read_label` reads one annotation into evaluation indices (0 .. C-1, 255 = ignore). Every
problem is a `DatasetError` that names the missing or wrong path and the preparation step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .protocol import IGNORE_INDEX, get_protocol


class DatasetError(ValueError):
    """The dataset folder does not have the expected layout or content."""


@dataclass(frozen=True)
class Layout:
    """Where one benchmark's validation split lives, relative to its root folder.

    reduce_zero_label: the annotation's 0 is "unlabelled" (ignored) and class k is stored as
    k + 1 (mmsegmentation's reduce_zero_label).
    """

    image_dir: str
    label_dir: str
    image_suffix: str
    label_suffix: str
    split: str | None = None  # file listing the image ids; None: every image in image_dir
    reduce_zero_label: bool = False
    recursive: bool = False  # images in sub-folders (Cityscapes' cities)
    roots: tuple[str, ...] = ("",)  # where the layout may sit under the --root given
    prepare: str = ""  # the preparation step, for error messages

    def encode(self, label: np.ndarray) -> np.ndarray:
        """Evaluation indices (H, W) uint8 -> the annotation files' own indices."""
        if not self.reduce_zero_label:
            return label
        out = label.astype(np.int16) + 1
        out[label == IGNORE_INDEX] = IGNORE_INDEX
        return out.astype(np.uint8)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """The annotation files' indices (H, W) uint8 -> evaluation indices (255 = ignore)."""
        if not self.reduce_zero_label:
            return raw
        out = raw.astype(np.int16) - 1
        out[(raw == 0) | (raw == IGNORE_INDEX)] = IGNORE_INDEX
        return out.astype(np.uint8)


_VOC = dict(image_dir="JPEGImages", label_dir="SegmentationClass", image_suffix=".jpg",
            label_suffix=".png", split="ImageSets/Segmentation/val.txt",
            roots=("", "VOCdevkit/VOC2012"),
            prepare="extract VOCtrainval_11-May-2012.tar (VOC2012 as released)")
_CONTEXT = dict(image_dir="JPEGImages", label_dir="SegmentationClassContext",
                image_suffix=".jpg", label_suffix=".png",
                split="ImageSets/SegmentationContext/val.txt", roots=("", "VOCdevkit/VOC2010"),
                prepare="mmsegmentation's tools/dataset_converters/pascal_context.py on VOC2010 "
                        "with trainval_merged.json")
_COCO = dict(image_dir="images/val2017", label_dir="annotations/val2017", image_suffix=".jpg",
             roots=("", "coco_stuff164k"))
LAYOUTS: dict[str, Layout] = {
    "voc21": Layout(**_VOC),
    "voc20": Layout(**_VOC, reduce_zero_label=True),
    "context60": Layout(**_CONTEXT),
    "context59": Layout(**_CONTEXT, reduce_zero_label=True),
    "coco_stuff": Layout(**_COCO, label_suffix="_labelTrainIds.png",
                         prepare="mmsegmentation's tools/dataset_converters/coco_stuff164k.py "
                                 "on stuffthingmaps_trainval2017"),
    "coco_object": Layout(**_COCO, label_suffix="_instanceTrainIds.png",
                          prepare="the CLIP-DINOiser authors' tools/convert_coco_object.py on "
                                  "coco_stuff164k"),
    "cityscapes": Layout(image_dir="leftImg8bit/val", label_dir="gtFine/val",
                         image_suffix="_leftImg8bit.png", label_suffix="_gtFine_labelTrainIds.png",
                         recursive=True, roots=("", "cityscapes"),
                         prepare="mmsegmentation's tools/dataset_converters/cityscapes.py "
                                 "(writes *_gtFine_labelTrainIds.png)"),
    "ade20k": Layout(image_dir="images/validation", label_dir="annotations/validation",
                     image_suffix=".jpg", label_suffix=".png", reduce_zero_label=True,
                     roots=("", "ADEChallengeData2016", "ade/ADEChallengeData2016"),
                     prepare="extract ADEChallengeData2016.zip"),
}


@dataclass(frozen=True)
class Sample:
    """One validation image: `id` is unique in the split and safe as a file-name stem."""

    id: str
    image: Path
    label: Path


def _see(name: str) -> str:
    return f"(see doc/evaluation.md, section {name}; preparation: {LAYOUTS[name].prepare})"


def find_root(name: str, root: str | Path) -> Path:
    """The folder under `root` that holds the layout of `name` (root itself or a standard
    sub-folder such as VOCdevkit/VOC2012). Raises DatasetError naming what is missing."""
    layout = LAYOUTS[name]
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{name}: dataset root {root} is not a folder")
    for sub in layout.roots:
        if (root / sub / layout.image_dir).is_dir():
            return root / sub
    tried = ", ".join(str(root / sub / layout.image_dir) for sub in layout.roots)
    raise DatasetError(f"{name}: missing folder {root / layout.image_dir} (looked for {tried}) "
                       + _see(name))


def _split_ids(name: str, base: Path, layout: Layout) -> list[str]:
    split = base / layout.split
    if not split.is_file():
        raise DatasetError(f"{name}: missing split file {split} " + _see(name))
    ids = [line.strip() for line in split.read_text().splitlines() if line.strip()]
    if not ids:
        raise DatasetError(f"{name}: split file {split} lists no images")
    return ids


def _scan_ids(name: str, image_dir: Path, layout: Layout) -> list[str]:
    pattern = f"{'**/' if layout.recursive else ''}*{layout.image_suffix}"
    rel = sorted(str(p.relative_to(image_dir)) for p in image_dir.glob(pattern) if p.is_file())
    if not rel:
        raise DatasetError(f"{name}: no *{layout.image_suffix} images in {image_dir} " + _see(name))
    return [r[: -len(layout.image_suffix)] for r in rel]


def list_samples(name: str, root: str | Path) -> list[Sample]:
    """The validation samples of dataset `name` under `root`, in the split's order (the split
    file's, else sorted by path as mmsegmentation lists them). Checks that the folders, the
    split file and every image's annotation exist; raises DatasetError naming the first
    missing path."""
    get_protocol(name)
    layout = LAYOUTS[name]
    base = find_root(name, root)
    image_dir, label_dir = base / layout.image_dir, base / layout.label_dir
    if not label_dir.is_dir():
        raise DatasetError(f"{name}: missing folder {label_dir} " + _see(name))
    rel_ids = _split_ids(name, base, layout) if layout.split else _scan_ids(name, image_dir,
                                                                             layout)
    samples = [Sample(Path(r).name, image_dir / f"{r}{layout.image_suffix}",
                      label_dir / f"{r}{layout.label_suffix}") for r in rel_ids]
    for kind in ("image", "label"):
        missing = [getattr(s, kind) for s in samples if not getattr(s, kind).is_file()]
        if missing:
            raise DatasetError(
                f"{name}: {len(missing)} of {len(samples)} {kind} files are missing, the first "
                f"is {missing[0]} " + _see(name))
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{name}: image ids under {image_dir} are not unique")
    return samples


def read_label(name: str, sample: Sample) -> np.ndarray:
    """The annotation of `sample` as evaluation indices (H, W) uint8: 0 .. C-1, 255 = ignore.

    Palette PNGs (VOC) are read as their indices, not their colours. Raises DatasetError for an
    unreadable file, a colour (not index) image, or values outside the dataset's classes.
    """
    try:
        with Image.open(sample.label) as img:
            mode = img.mode
            raw = np.array(img)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{name}: cannot read annotation {sample.label}: {exc}") from exc
    if raw.ndim != 2 or mode not in ("P", "L"):
        raise DatasetError(
            f"{name}: annotation {sample.label} is a {mode} image; expected single-channel class "
            "indices " + _see(name))
    label = LAYOUTS[name].decode(raw.astype(np.uint8, copy=False))
    classes = get_protocol(name).num_classes
    bad = (label >= classes) & (label != IGNORE_INDEX)
    if bad.any():
        raise DatasetError(
            f"{name}: annotation {sample.label} holds value {int(raw[bad].max())}, outside the "
            f"{classes} classes and not the ignore index: not the prepared annotation? "
            + _see(name))
    return label
