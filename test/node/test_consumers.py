"""The node's outputs as their consumers read them, through a long run of vocabulary changes:
Hydra's colour CSV (a plain comma split, std::stoi, colours as keys) and Nav2's semantic
segmentation layer (labels and confidence read as bytes, LabelInfo as a name -> uint8 map);
helpers/consumers.py holds the readers, written from those projects' sources."""

from __future__ import annotations

import itertools

import pytest
import yaml
from helpers.consumers import hydra_colour_map, nav2_class_map, nav2_pixels
from helpers.ros_helpers import (
    image_fields_msg,
    labels_array,
    make_picture,
    send_until,
    stamp,
    wait_for,
)

pytest.importorskip("rclpy")
pytest.importorskip("vision_msgs.msg")
from rcl_interfaces.msg import Log  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import LabelInfo  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402

AWKWARD = ["salt, pepper", 'say "hi"', "chair"]
WORDS = [f"thing {i}" for i in range(550)]


def set_prompts(ros, ns: str, prompts: list[str]) -> SetPrompts.Response:
    return ros.call(SetPrompts, f"{ns}/ovseg/set_prompts", SetPrompts.Request(prompts=prompts),
                    timeout=120.0)


def hydra_reads(folder) -> dict[int, str]:
    """The colour CSV through Hydra's reader (raises where Hydra would) and the label names of
    the YAML; id -> name."""
    space = yaml.safe_load((folder / "ovseg_label_space.yaml").read_text(encoding="utf-8"))
    colours = hydra_colour_map(open(space["semantic_colormap_file"], encoding="utf-8").read())
    names = {e["label"]: e["name"] for e in space["label_names"]}
    assert sorted(colours.values()) == sorted(names)
    return names


@pytest.mark.slow
@pytest.mark.parametrize("label_ids", ["reuse", "stable"])
def test_550_names_through_hydra_and_nav2_readers(ros, autostart_node, tmp_path, label_ids):
    folder = tmp_path / "hydra"
    # 32 vocabulary changes in a row: no rate limit (set_prompts_rate_hz 0) for this client
    node, ns = autostart_node(label_space_dir=str(folder), label_ids=label_ids,
                              publish_confidence_mono8=True, set_prompts_rate_hz=0.0)
    warnings = ros.collect(Log, "/rosout", 1000)
    # names with a comma and quotes: accepted, exact in the YAML, comma-free in the CSV
    res = set_prompts(ros, ns, AWKWARD)
    assert res.success, res.message
    assert list(hydra_reads(folder).values())[1:] == AWKWARD
    # a 250-name vocabulary, then 30 changes of 10 new names each (250 at a time, 550 in all)
    current = WORDS[:250]
    assert set_prompts(ros, ns, current).success
    hydra_reads(folder)
    for k in range(30):
        current = current[10:] + WORDS[250 + 10 * k: 260 + 10 * k]
        res = set_prompts(ros, ns, current)
        assert res.success, res.message
        assert dict(zip(res.class_names, res.class_ids, strict=True)) == {
            n: i for i, n in hydra_reads(folder).items() if i}
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    assert list(got.class_names) == current
    top = max(got.class_ids)

    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    conf8 = ros.collect(Image, f"{ns}/ovseg/confidence_mono8")
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    info = ros.collect(LabelInfo, f"{ns}/ovseg/label_info", Q.latched())
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.sensor_data(1))
    pic, sent = make_picture(40, 56), itertools.count(1)
    final = node.vocabulary().version
    assert send_until(pub, lambda: image_fields_msg(pic, stamp=stamp(100 + next(sent))),
                      lambda: any(s.vocabulary_version == final for s in segs.snapshot())
                      and labels.count and conf8.count, timeout=120.0)
    seg = next(s for s in segs.snapshot() if s.vocabulary_version == final)
    label = next(m for m in labels.snapshot() if m.header.stamp == seg.header.stamp)
    lab_info = info.last()
    assert [(c.class_id, c.class_name) for c in lab_info.class_map[1:]] == list(
        zip(got.class_ids, got.class_names, strict=True))

    def mentions() -> list[str]:
        return [m.msg for m in warnings.snapshot() if ns.strip("/") in m.name and "mono16" in m.msg]

    if label_ids == "reuse":
        assert top <= 250 and label.encoding == "mono8"
        nav2_map = nav2_class_map(lab_info)  # every id fits Nav2's uint8 map
        pixels = nav2_pixels(label)
        assert set(pixels) <= set(nav2_map.values())
        assert pixels == labels_array(label).ravel().tolist()
        assert len(nav2_pixels(conf8.last())) == 40 * 56
        assert mentions() == []
    else:  # stable: cat, dog, car, the 3 awkward names and 550 more: every one its own id
        assert top == 3 + 3 + 550 and label.encoding == "mono16"
        assert wait_for(lambda: mentions(), 20.0)
        assert len(mentions()) == 1, mentions()  # once, not per change
        assert "Nav2" in mentions()[0] and "label_ids:=reuse" in mentions()[0]
