"""One meaning for a prompt name: every path stores the normalised name (Unicode NFKC,
zero-width and bidi characters removed, whitespace collapsed), so the `prompts` parameter,
~/get_prompts, LabelMap and LabelInfo agree, and names that look alike are one class, one id.
"""

from __future__ import annotations

import pytest
from helpers.ros_helpers import wait_for

pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402

from ovseg_ros.core.vocabulary import VocabularyError, normalise_name, validate_prompts  # noqa: E402,E501
from ovseg_ros.msg import LabelMap  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402

LOOKALIKES = ["chai\u200br", "\uff43\uff48\uff41\uff49\uff52", "chair\u200d", "\u2066chair\u2069",
              " chair\u00a0", "chair\ufeff", "cha\u00adir"]


@pytest.mark.parametrize("raw", LOOKALIKES)
def test_lookalike_names_normalise_to_one(raw):
    assert normalise_name(raw) == "chair"
    with pytest.raises(VocabularyError, match="duplicates prompt 0"):
        validate_prompts(["chair", raw])


@pytest.mark.parametrize("raw", ["\u200b", "\u202e", " \u200b\t\n", "\ufeff"])
def test_names_empty_once_normalised_are_refused(raw):
    with pytest.raises(VocabularyError, match="empty or whitespace once normalised"):
        validate_prompts(["cat", raw])


def test_whitespace_controls_collapse_other_controls_are_refused():
    assert validate_prompts(["chair\nperson", "a\tb\r c"]) == ["chair person", "a b c"]
    with pytest.raises(VocabularyError, match="control characters"):
        validate_prompts(["bell\x07"])


def agree(ros, node, ns: str, label_map, label_info) -> list[tuple[str, int]]:
    """The vocabulary as get_prompts says, checked against the parameter, LabelMap and
    LabelInfo (the latched maps: the last one published)."""
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    pairs = list(zip(got.class_names, got.class_ids, strict=True))
    assert node.get_parameter("prompts").value == [n for n, _ in pairs]
    assert wait_for(lambda: label_map.last() is not None and [
        (e.class_name, e.class_id) for e in label_map.last().labels if e.class_id] == pairs, 20.0)
    if label_info is not None:
        assert wait_for(lambda: label_info.last() is not None and [
            (c.class_name, c.class_id) for c in label_info.last().class_map if c.class_id]
            == pairs, 20.0)
    return pairs


def test_parameter_service_and_maps_agree_on_the_normalised_names(ros, autostart_node):
    node, ns = autostart_node(prompts=["  chair  ", "person"])  # a padded start-up value too
    label_map = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    label_info = None
    try:
        from vision_msgs.msg import LabelInfo

        label_info = ros.collect(LabelInfo, f"{ns}/ovseg/label_info", Q.latched())
    except ImportError:
        pass
    assert wait_for(lambda: label_map.count >= 1)
    assert agree(ros, node, ns, label_map, label_info) == [("chair", 1), ("person", 2)]
    # ros2 param set /ovseg prompts "['  chair  ', 'person\nsitting']"
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("prompts",
                                                    value=["  chair  ", "person\nsitting"])])
    assert r.successful, r.reason
    assert agree(ros, node, ns, label_map, label_info) == [("chair", 1),
                                                           ("person sitting", 3)]
    # Look-alikes of chair through the service: the same class and id, or a duplicate.
    res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                   SetPrompts.Request(prompts=["\uff43\uff48\uff41\uff49\uff52", "person"]))
    assert res.success and list(res.class_names) == ["chair", "person"]
    assert list(res.class_ids) == [1, 2]
    assert agree(ros, node, ns, label_map, label_info) == [("chair", 1), ("person", 2)]
    res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                   SetPrompts.Request(prompts=["chair", "chai\u200br"]))
    assert not res.success and "duplicates" in res.message
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("prompts", value=["chair", "\u200b"])])
    assert not r.successful and "empty or whitespace" in r.reason
    assert agree(ros, node, ns, label_map, label_info) == [("chair", 1), ("person", 2)]


def test_twelve_new_names_are_encoded_in_one_batch(tmp_path):
    """The node's encoding step (FramePipeline.encode_text): all new names in one pass
    through the text encoder; names already cached are not encoded again."""
    from helpers.tiny_models import tiny_segmenter

    from ovseg_ros.core.pipeline import FramePipeline

    seg = tiny_segmenter(tmp_path)
    pipe = FramePipeline(seg)
    batches, real = [], seg.text_cache._encode
    seg.text_cache._encode = lambda names: (batches.append(list(names)), real(names))[1]
    names = [f"object {i}" for i in range(12)]
    missing = seg.text_to_encode(["cat", *names])
    assert missing == ["cat", *names]
    pipe.encode_text(missing)
    assert batches == [missing]
    assert seg.text_to_encode(["cat", *names]) == []
    pipe.set_prompts(["cat", *names])  # cached: the swap encodes nothing
    assert len(batches) == 1
