"""The managed node over real rclpy: every lifecycle transition driven through the standard
services, what each state publishes and answers, and the rough edges a ROS user hit with
`ros2 param dump`, `ros2 param set` and the logs."""

from __future__ import annotations

import gc
import time
import weakref

import pytest
from helpers.node_fixtures import change_state, get_state
from helpers.ros_helpers import image_fields_msg, make_picture, wait_for

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Log, ParameterType  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ovseg_ros.bench.timing import current_rss_mb  # noqa: E402
from ovseg_ros.msg import LabelMap  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.settings.parameters import SETTINGS  # noqa: E402
from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402


def _status(diags, ns: str):
    """The newest /diagnostics status of the node in namespace `ns`, or None."""
    for arr in reversed(diags.snapshot()):
        for st in arr.status:
            if st.name.startswith(f"{ns[1:]}/ovseg: segmentation"):
                return st
    return None


def _stream_for(ros, pub, seconds: float) -> None:
    msg = image_fields_msg(make_picture(32, 48))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg.header.stamp = ros.helper.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(0.05)


def test_lifecycle_over_the_standard_services(ros, autostart_node, tmp_path):
    node, ns = autostart_node(autostart=False, clip_weights=str(tmp_path / "missing.bin"))
    path = f"{ns}/ovseg"
    labels = ros.collect(Image, f"{path}/labels")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    label_map = ros.collect(LabelMap, f"{path}/label_map", Q.latched())
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(1))

    # unconfigured: every service answers at once, refusing what needs a model
    assert get_state(ros, path) == "unconfigured"
    res = ros.call(SetPrompts, f"{path}/set_prompts", SetPrompts.Request(prompts=["cup"]))
    assert not res.success and "the node is unconfigured: configure it first" in res.message
    res = ros.call(Trigger, f"{path}/keyframe", Trigger.Request())
    assert not res.success and "unconfigured" in res.message
    got = ros.call(GetPrompts, f"{path}/get_prompts", GetPrompts.Request())
    assert list(got.class_names) == [] and got.background
    assert wait_for(lambda: (s := _status(diags, ns)) is not None
                    and "unconfigured (waiting for configure)" in s.message)

    # configure with missing weights: FAILURE, the node stays alive and unconfigured
    assert not change_state(ros, path, "configure")
    assert get_state(ros, path) == "unconfigured" and node.outputs is None
    assert "CLIP weights file not found" in node.last_error
    assert wait_for(lambda: (s := _status(diags, ns)) is not None
                    and s.level == bytes([2]) and "configure failed" in s.message)

    # a start-up setting may change while unconfigured; then configure succeeds
    (r,) = ros.set_params(path, [Parameter("clip_weights", value=node.values["heads"]
                                           .replace("heads-0", "clip-0"))])
    assert r.successful, r.reason
    assert change_state(ros, path, "configure")
    assert get_state(ros, path) == "inactive" and node.last_error is None
    # inactive: the model is loaded but nothing is subscribed or published
    _stream_for(ros, pub, 1.5)
    assert labels.count == 0 and label_map.count == 0
    res = ros.call(SetPrompts, f"{path}/set_prompts", SetPrompts.Request(prompts=["cup", "car"]))
    assert res.success and list(res.class_names) == ["cup", "car"]
    (r,) = ros.set_params(path, [Parameter("input_size", value=224)])
    assert not r.successful and "the node is inactive" in r.reason

    # active: labels flow and the latched label map describes the vocabulary
    assert change_state(ros, path, "activate")
    assert get_state(ros, path) == "active"
    assert wait_for(lambda: label_map.count >= 1)
    assert [e.class_name for e in label_map.last().labels] == ["background", "cup", "car"]
    msg = image_fields_msg(make_picture(32, 48))
    assert wait_for(lambda: pub.publish(msg) or labels.count >= 2, period=0.05)
    (r,) = ros.set_params(path, [Parameter("model", value="ViT-L-14")])
    assert not r.successful and "the node is active" in r.reason and "cleanup" in r.reason

    # deactivate: no more labels; the model stays loaded
    assert change_state(ros, path, "deactivate")
    assert get_state(ros, path) == "inactive" and node.worker is None
    time.sleep(0.3)  # a frame published before the deactivate may still arrive
    before = labels.count
    _stream_for(ros, pub, 1.5)
    assert labels.count == before and node.pipeline is not None

    # cleanup: the model goes (nothing keeps the Segmenter alive), back to unconfigured
    segmenter = weakref.ref(node.segmenter)
    rss_loaded = current_rss_mb()
    assert change_state(ros, path, "cleanup")
    gc.collect()
    assert get_state(ros, path) == "unconfigured" and node.outputs is None
    assert segmenter() is None
    print(f"RSS {rss_loaded:.0f} MB loaded -> {current_rss_mb():.0f} MB after cleanup "
          "(tiny model: see `python -m ovseg_ros.bench --only lifecycle` for ViT-B-16)")

    # configure + activate again: the ids and the version carry over, then shutdown from active
    assert change_state(ros, path, "configure") and change_state(ros, path, "activate")
    vocab = node.vocabulary()
    assert (vocab.names, vocab.ids, vocab.version) == (("cup", "car"), (4, 3), 3)
    assert wait_for(lambda: label_map.last().version == 3)
    labels.clear()
    assert wait_for(lambda: pub.publish(msg) or labels.count >= 1, period=0.05)
    assert change_state(ros, path, "shutdown")
    assert get_state(ros, path) == "finalized" and node.outputs is None


def test_autostart_false_keeps_the_node_unconfigured_until_asked(ros, autostart_node):
    node, ns = autostart_node(autostart=False)
    assert node.state == "unconfigured" and node.start_failure() is None
    assert get_state(ros, f"{ns}/ovseg") == "unconfigured"


def test_every_parameter_has_a_value_for_param_dump(ros, seg_node):
    """What `ros2 param dump` does: list, then get every parameter. An unset one (cameras was
    declared without a value) made rclpy answer nothing at all."""
    from rcl_interfaces.srv import GetParameters, ListParameters

    _, ns = seg_node()
    names = ros.call(ListParameters, f"{ns}/ovseg/list_parameters",
                     ListParameters.Request()).result.names
    assert {s.name for s in SETTINGS} <= set(names)
    values = ros.call(GetParameters, f"{ns}/ovseg/get_parameters",
                      GetParameters.Request(names=list(names))).values
    assert len(values) == len(names)
    unset = [n for n, v in zip(names, values, strict=True)
             if v.type == ParameterType.PARAMETER_NOT_SET]
    assert unset == []
    cameras = values[list(names).index("cameras")]
    assert cameras.type == ParameterType.PARAMETER_STRING_ARRAY and cameras.string_array_value == []


def test_vocabulary_changes_are_logged_with_ids(ros, seg_node):
    node, ns = seg_node()
    logs = ros.collect(Log, "/rosout", Q.latched())
    res = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                   SetPrompts.Request(prompts=["dog", "bird"]))
    assert res.success
    want = "vocabulary v1: cat(1), dog(2), car(3) -> vocabulary v2: dog(2), bird(4)"
    mine = f"{ns[1:].replace('/', '.')}.ovseg"
    assert wait_for(lambda: any(m.name == mine and m.msg == want and m.level == Log.INFO
                                for m in logs.snapshot())), [m.msg for m in logs.snapshot()]
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("prompts", value=["bird"])])
    assert r.successful
    want = "vocabulary v2: dog(2), bird(4) -> vocabulary v3: bird(4)"
    assert wait_for(lambda: any(m.msg == want for m in logs.snapshot()))


def test_an_integer_sets_a_double_parameter(ros, seg_node):
    """`ros2 param set /ovseg threshold 0` sends an integer: rclpy refused it with only "Wrong
    parameter type, expected '3' got '2'"."""
    node, ns = seg_node()
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("threshold", Parameter.Type.INTEGER, 1)])
    assert r.successful, r.reason
    value = node.get_parameter("threshold")
    assert value.type_ == Parameter.Type.DOUBLE and value.value == 1.0
    assert node.values["threshold"] == 1.0
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("threshold", Parameter.Type.INTEGER, 2)])
    assert not r.successful and "out of range" in r.reason  # the range still holds
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("max_prompts", Parameter.Type.DOUBLE, 9.0)])
    assert not r.successful  # only integers widen: a double stays refused for an integer


def test_threads_and_heads_sha256_rules(ros, seg_node):
    node, ns = seg_node()
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("threads", value=1)])
    assert r.successful and node.segmenter.config.threads == 1
    (r,) = ros.set_params(f"{ns}/ovseg", [Parameter("heads_sha256", value="/home/me/last.pt")])
    assert not r.successful and "64 hexadecimal digits" in r.reason
