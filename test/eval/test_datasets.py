"""Dataset readers on synthetic layouts, broken layouts, the pinned protocol, class lists and
the prompt mapping (synonyms, background)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from ovseg_ros.core import SegmenterConfig
from ovseg_ros.core.tiling import short_side_size
from ovseg_ros.core.vocabulary import validate_prompts
from ovseg_ros.eval.classes import CLASS_LISTS, ClassListError, read_class_file
from ovseg_ros.eval.datasets import LAYOUTS, DatasetError, list_samples, read_label
from ovseg_ros.eval.prompts import NO_CLASS, build_mapping, to_class_indices
from ovseg_ros.eval.protocol import DATASETS, PROTOCOLS, deviations, segmenter_config
from ovseg_ros.eval.synthetic import make_synthetic

# name: (classes, background counted in mIoU, objectness background rule, reduce_zero_label)
EXPECTED = {
    "voc21": (21, True, True, False), "context60": (60, True, False, False),
    "coco_object": (81, True, True, False), "voc20": (20, False, False, True),
    "context59": (59, False, False, True), "coco_stuff": (171, False, False, False),
    "cityscapes": (19, False, False, False), "ade20k": (150, False, False, True),
}


@pytest.mark.parametrize("name", DATASETS)
def test_protocol_pinned(name):
    p = PROTOCOLS[name]
    classes, has_bg, rule, reduce = EXPECTED[name]
    assert (p.short_side, p.long_side, p.mode, p.window, p.stride) == (448, 2048, "slide", 448,
                                                                       224)
    assert (p.ignore_index, p.precision, p.threshold) == (255, "fp32", 0.0)
    assert p.num_classes == len(CLASS_LISTS[name]) == classes
    assert (p.has_background, p.background_rule) == (has_bg, rule)
    assert LAYOUTS[name].reduce_zero_label is reduce
    assert CLASS_LISTS[name][0] == (("background",) if has_bg else CLASS_LISTS[name][0])
    cfg = segmenter_config(SegmenterConfig(mode="slide", precision="fp32"), p)
    assert cfg.background is rule
    assert deviations(cfg, p, "fp32") == []


def test_protocol_resize_and_deviations():
    # mmsegmentation's (2048, 448) keep-ratio resize, as the Segmenter applies it.
    assert short_side_size(1024, 2048, 448) == (448, 896)  # Cityscapes
    assert short_side_size(512, 683, 448) == (448, 598)  # an ADE20k image
    assert short_side_size(100, 1000, 448) == (205, 2048)  # long side capped at 2048
    p = PROTOCOLS["voc21"]
    cfg = segmenter_config(SegmenterConfig(mode="whole", input_size=336, background=False), p)
    assert not cfg.background
    notes = deviations(cfg, p, "bf16")
    assert "mode whole (paper: slide)" in notes and "input_size 336 (paper: 448)" in notes
    assert "precision bf16 (paper: fp32)" in notes
    assert any(n.startswith("background rule off") for n in notes)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("nested", [False, True])
def test_reader_reads_synthetic_layout(tmp_path, name, nested):
    s = make_synthetic(name, tmp_path, count=3, seed=1, nested=nested)
    samples = list_samples(name, s.root)
    assert [x.id for x in samples] == list(s.ids)
    for x in samples:
        gt = read_label(name, x)
        assert gt.dtype == np.uint8 and (gt == s.labels[x.id]).all()
        values = set(np.unique(gt)) - {255}
        assert values and max(values) < PROTOCOLS[name].num_classes
    if name.startswith("voc"):
        with Image.open(samples[0].label) as img:
            assert img.mode == "P"  # read as palette indices, not colours


@pytest.mark.parametrize("name", DATASETS)
def test_broken_layouts_name_the_missing_path(tmp_path, name):
    s = make_synthetic(name, tmp_path / "ok", count=2)
    layout = LAYOUTS[name]
    samples = list_samples(name, s.root)
    # One annotation missing.
    samples[1].label.unlink()
    with pytest.raises(DatasetError, match="1 of 2 label files are missing") as err:
        list_samples(name, s.root)
    assert str(samples[1].label) in str(err.value) and "doc/evaluation.md" in str(err.value)
    # The split file missing.
    if layout.split:
        (s.root / layout.split).unlink()
        with pytest.raises(DatasetError, match="missing split file") as err:
            list_samples(name, s.root)
        assert str(s.root / layout.split) in str(err.value)
    # The annotation folder missing.
    shutil.rmtree(s.root / layout.label_dir)
    with pytest.raises(DatasetError, match="missing folder") as err:
        list_samples(name, s.root)
    assert str(s.root / layout.label_dir) in str(err.value)
    # The image folder missing (e.g. --root one level too high or too deep).
    with pytest.raises(DatasetError, match="missing folder") as err:
        list_samples(name, tmp_path / "ok" / layout.image_dir)
    assert layout.image_dir in str(err.value)
    with pytest.raises(DatasetError, match="not a folder"):
        list_samples(name, tmp_path / "nowhere")


def test_wrong_annotations_are_refused(tmp_path):
    s = make_synthetic("coco_stuff", tmp_path / "coco", count=2)
    sample = list_samples("coco_stuff", s.root)[0]
    Image.fromarray(np.full((48, 64), 181, np.uint8)).save(sample.label)  # raw COCO ids
    with pytest.raises(DatasetError, match="value 181.*coco_stuff164k.py"):
        read_label("coco_stuff", sample)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(sample.label)  # a colour mask
    with pytest.raises(DatasetError, match="RGB image"):
        read_label("coco_stuff", sample)
    # COCO-Object needs the converted *_instanceTrainIds.png, not the COCO-Stuff files.
    for p in (s.root / "annotations/val2017").glob("*_labelTrainIds.png"):
        p.rename(p.with_name(p.name.replace("_labelTrainIds", "_instanceTrainIds")))
    list_samples("coco_object", s.root)
    for p in (s.root / "annotations/val2017").glob("*_instanceTrainIds.png"):
        p.unlink()
    with pytest.raises(DatasetError, match="_instanceTrainIds.png.*convert_coco_object.py"):
        list_samples("coco_object", s.root)


def test_reduce_zero_label_round_trip():
    layout = LAYOUTS["ade20k"]
    raw = np.array([[0, 1, 150], [255, 2, 0]], np.uint8)
    assert layout.decode(raw).tolist() == [[255, 0, 149], [255, 1, 255]]
    assert layout.encode(layout.decode(raw)).tolist() == [[255, 1, 150], [255, 2, 255]]


def test_class_lists_are_valid_prompts():
    for name, classes in CLASS_LISTS.items():
        rule = PROTOCOLS[name].background_rule
        mapping = build_mapping(classes, background=rule)
        # Every name is accepted by the Segmenter's vocabulary rules as it is.
        assert validate_prompts(list(mapping.prompts), background=rule,
                                max_prompts=len(mapping.prompts)) == list(mapping.prompts)
        assert len(mapping.prompts) == len(classes) - (1 if rule else 0)
    assert CLASS_LISTS["coco_object"][5] == ("aeroplane",)  # the authors' spelling
    assert CLASS_LISTS["coco_stuff"][4] == ("airplane",)


def test_mapping_with_synonyms_and_background():
    classes = (("background", "sky", "wall"), ("cat",), ("dog", "puppy"))
    mapping = build_mapping(classes, background=True)
    assert mapping.prompts == ("sky", "wall", "cat", "dog", "puppy")  # no 'background' prompt
    assert mapping.classes == (0, 0, 1, 2, 2)
    ids = {"sky": 1, "wall": 2, "cat": 3, "dog": 4, "puppy": 5}  # as set_prompts returns them
    table = mapping.lookup(ids)
    labels = np.array([[0, 1, 2], [3, 4, 5]], np.uint16)
    assert to_class_indices(labels, table).tolist() == [[0, 0, 0], [1, 2, 2]]
    # Without the background rule (Context60), 'background' is an ordinary prompt and id 0
    # (a pixel below the threshold) is no class.
    plain = build_mapping(classes, background=False)
    assert plain.prompts[0] == "background" and plain.classes[:3] == (0, 0, 0)
    table = plain.lookup({n: i + 1 for i, n in enumerate(plain.prompts)})
    assert table[0] == NO_CLASS and table[1] == 0 and table[6] == 2
    with pytest.raises(ClassListError, match="'Cat' is listed for class 1 and again for class 2"):
        build_mapping((("background",), ("cat",), ("Cat",)), background=True)
    with pytest.raises(ClassListError, match="implicit class 0"):
        build_mapping((("sky",), ("background",)), background=True)


def test_class_file(tmp_path):
    path = tmp_path / "voc.txt"
    path.write_text("# VOC with synonyms\nbackground, sky\n\naeroplane,  air plane\n" +
                    "\n".join(n for (n,) in CLASS_LISTS["voc21"][2:]) + "\n")
    classes = read_class_file(path, 21)
    assert classes[0] == ("background", "sky") and classes[1] == ("aeroplane", "air plane")
    assert classes[2:] == CLASS_LISTS["voc21"][2:]
    with pytest.raises(ClassListError, match="lists 21 classes; this dataset has 20"):
        read_class_file(path, 20)
    path.write_text("cat, ,dog\n")
    with pytest.raises(ClassListError, match=":1: empty name"):
        read_class_file(path, 1)
    with pytest.raises(ClassListError, match="cannot read"):
        read_class_file(tmp_path / "missing.txt", 1)


@pytest.mark.parametrize("name", ["coco_stuff", "coco_object"])
def test_prepare_coco_from_stuffthingmaps(tmp_path, name):
    from ovseg_ros.eval.prepare import THING_VALUES, coco_table, convert_coco
    from ovseg_ros.eval.prepare import main as prepare_main

    s = make_synthetic(name, tmp_path, count=3, seed=5, nested=True)
    samples = list_samples(name, s.root)
    for x in samples:
        x.label.unlink()
    assert prepare_main([name, str(s.root)]) == 0
    assert [(read_label(name, x) == s.labels[x.id]).all() for x in samples] == [True] * 3
    assert convert_coco(name, s.root) == 0  # existing files are kept
    assert convert_coco(name, s.root, overwrite=True) == 3
    table = coco_table(name)
    # Spot values of the dataset's table: person (COCO id 1), toothbrush (id 90), banner (the
    # first stuff class, id 92), wood (the last, id 182), unlabelled.
    person, toothbrush, banner, wood = 0, 89, 91, 181
    assert len(THING_VALUES) == 80 and THING_VALUES[-1] == toothbrush
    if name == "coco_stuff":
        assert table[[person, toothbrush, banner, wood, 255]].tolist() == [0, 79, 80, 170, 255]
    else:
        assert table[[person, toothbrush, banner, wood, 255]].tolist() == [1, 80, 0, 0, 0]


def test_synthetic_command(tmp_path, capsys):
    from ovseg_ros.eval.synthetic import main as synthetic_main

    assert synthetic_main(["cityscapes", str(tmp_path), "--count", "2", "--size", "32",
                           "48"]) == 0
    assert "2 synthetic images" in capsys.readouterr().out
    assert len(list_samples("cityscapes", tmp_path)) == 2
