"""Class-name lists of the eight benchmarks, and user lists with synonyms.

A class list is a tuple with one entry per dataset class (in the dataset's class-index order);
each entry is a tuple of one or more names (synonyms) that all mean that class.

The built-in lists are the names the CLIP-DINOiser authors evaluated with: the `CLASSES` of
their mmsegmentation dataset classes (github.com/wysoczanska/clip_dinoiser, commit a954aae6,
segmentation/datasets/*.py) and, for Cityscapes and ADE20k, for which their configs use
mmsegmentation's own dataset classes, mmsegmentation's lists (github.com/open-mmlab/
mmsegmentation, commit 088894bd, mmseg/datasets/cityscapes.py and ade.py). The authors ship no
synonym files: every class has exactly one name. doc/evaluation.md gives the sources per dataset.
"""

from __future__ import annotations

from pathlib import Path

ClassList = tuple[tuple[str, ...], ...]

_VOC20 = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "dining table", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa",
    "train", "tvmonitor",
)
_CONTEXT59 = (
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book",
    "bottle", "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth",
    "computer", "cow", "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food",
    "grass", "ground", "horse", "keyboard", "light", "motorbike", "mountain", "mouse", "person",
    "plate", "platform", "potted plant", "road", "rock", "sheep", "shelves", "sidewalk", "sign",
    "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall",
    "water", "window", "wood",
)
# COCO-Object (the authors' list): COCO's 80 thing classes, with "aeroplane" where COCO-Stuff
# says "airplane".
_COCO_OBJECTS = (
    "person", "bicycle", "car", "motorcycle", "aeroplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
_COCO_STUFF_EXTRA = (
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
    "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog",
    "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill",
    "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud",
    "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
    "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone",
    "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)
_CITYSCAPES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
# mmsegmentation writes "bed " with a trailing space; CLIP's tokenizer drops it, so "bed" here
# gives the same text embedding.
_ADE20K = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug",
    "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)


def _single(names: tuple[str, ...]) -> ClassList:
    return tuple((n,) for n in names)


# COCO-Stuff's first 80 names are COCO's things, with "airplane" (its own spelling).
_COCO_THINGS_STUFF = tuple("airplane" if n == "aeroplane" else n for n in _COCO_OBJECTS)

CLASS_LISTS: dict[str, ClassList] = {
    "voc21": _single(("background", *_VOC20)),
    "voc20": _single(_VOC20),
    "context60": _single(("background", *_CONTEXT59)),
    "context59": _single(_CONTEXT59),
    "coco_object": _single(("background", *_COCO_OBJECTS)),
    "coco_stuff": _single(_COCO_THINGS_STUFF + _COCO_STUFF_EXTRA),
    "cityscapes": _single(_CITYSCAPES),
    "ade20k": _single(_ADE20K),
}


class ClassListError(ValueError):
    """A class-name file that cannot be used; the message names the line."""


def read_class_file(path: str | Path, expected: int) -> ClassList:
    """Read a class-name file: one line per dataset class, in class-index order, synonyms
    separated by commas ("sky, clouds"). Blank lines and lines starting with '#' are skipped.

    Raises ClassListError when the file is missing, a line has an empty name, or the number of
    classes differs from `expected` (the dataset's class count).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClassListError(f"cannot read class-name file {path}: {exc}") from exc
    classes: list[tuple[str, ...]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        names = tuple(" ".join(n.split()) for n in line.split(","))
        if not all(names):
            raise ClassListError(f"{path}:{number}: empty name in {line.strip()!r}")
        classes.append(names)
    if len(classes) != expected:
        raise ClassListError(
            f"{path} lists {len(classes)} classes; this dataset has {expected} (one line per "
            "class, in class-index order)")
    return tuple(classes)
