"""Launch file, parameter YAML and RViz config against the node's declared parameters.

`launch`/`launch_ros` have no wheels, so the launch file is checked with `ast` and run against
small stand-ins for the few launch classes it uses; none of this needs rclpy.
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest
import yaml
from helpers.launch_fakes import launch_setup, load_launch_module

from ovseg_ros.core.settings import ConfigError, settings_of
from ovseg_ros.node import params as P
from ovseg_ros.node.camera_presets import PRESETS
from ovseg_ros.settings.parameters import BY_NAME, SETTINGS, ReplayConfig

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "segment.launch.py"
CONFIG = ROOT / "config" / "segment.yaml"
RVIZ = ROOT / "rviz" / "ovseg.rviz"


def test_launch_file_imports_launch_only_inside_generate_launch_description():
    tree = ast.parse(LAUNCH.read_text())
    gld = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
               and n.name == "generate_launch_description")
    inside = {id(n) for n in ast.walk(gld)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names]
            if any(n.split(".")[0] in ("launch", "launch_ros") for n in names):
                assert id(node) in inside, f"line {node.lineno} imports launch at module level"
    load_launch_module()  # importable without launch installed


def test_every_node_parameter_is_a_launch_argument():
    module = load_launch_module()
    args = module.arguments()
    for s in SETTINGS:  # clip_weights:=, heads:=, keyframes:=, autostart:=, ...
        assert s.name in args and args[s.name][0] == "", s.name
        assert s.doc in args[s.name][1], s.name
    for name in ("image", "namespace", "params_file", "replay", "rviz", "log_level"):
        assert name in args
    assert not set(module.LAUNCH_ARGUMENTS) & set(BY_NAME), "a launch-only name shadows a param"
    # The replay node's parameters exist there, typed and checked like the node's.
    replay = module.replay_parameters("", "5", True)
    assert set(replay) <= {s.name for s in settings_of(ReplayConfig)}
    assert replay == {"source": "", "rate": 5.0, "depth": True}
    with pytest.raises(ConfigError, match="launch argument replay_rate"):
        module.replay_parameters("", "fast", False)


def test_launch_argument_overrides_are_typed_parameter_values():
    module = load_launch_module()
    out = module.parameter_overrides({
        "device": "cuda:0", "prompts": "['person', 'door']", "qos": "", "cameras": "[front]",
        "input_transport": " compressed ", "keyframes": "True", "threshold": "0",
        "input_size": "336", "clip_weights": "/data/clip.bin"})
    assert out == {"device": "cuda:0", "prompts": ["person", "door"], "cameras": ["front"],
                   "input_transport": "compressed", "keyframes": True, "threshold": 0.0,
                   "input_size": 336, "clip_weights": "/data/clip.bin"}
    assert type(out["threshold"]) is float  # "0" for a double: ROS would refuse an int
    assert module.parameter_overrides({"prompts": "chair"}) == {"prompts": ["chair"]}
    assert module.parameter_overrides({"cameras": "[]"}) == {}  # the default; untypable in ROS
    for name, value in out.items():
        assert BY_NAME[name].problem(value) is None


@pytest.mark.parametrize("name, text, fragments", [
    ("prompts", "[]", ["launch argument prompts", "give at least one class name"]),
    ("prompts", "['a', 'b'", ["launch argument prompts", "expected a YAML list"]),
    ("prompts", "[[a], b]", ["launch argument prompts", "expected a YAML list of names"]),
    ("threshold", "high", ["launch argument threshold", "could not convert"]),
    ("threshold", "2", ["threshold=2.0 is outside [0, 1]"]),
    ("keyframes", "yes", ["launch argument keyframes", "expected true or false"]),
    ("precision", "fp8", ["precision='fp8' is not one of: auto, fp32, bf16, fp16"]),
    ("heads_sha256", "/tmp/x.pt", ["heads_sha256", "64 hexadecimal digits"]),
    ("cameras", "['front', 'front']", ["cameras", "duplicates"]),
])
def test_bad_launch_arguments_name_the_argument(name, text, fragments):
    module = load_launch_module()
    with pytest.raises(ConfigError) as err:
        module.parameter_overrides({name: text})
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_launch_description_runs_and_starts_the_right_nodes(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    context.update(image="/cam/front", namespace="robot1", prompts="['cup']", replay="true")
    actions = setup(context)
    seg, replay = actions[0].kwargs, actions[1].kwargs
    assert (seg["package"], seg["executable"], seg["namespace"]) == \
        ("ovseg_ros", "segment_node", "robot1")
    package_yaml, overrides = seg["parameters"]
    assert Path(package_yaml) == CONFIG
    assert overrides == {"prompts": ["cup"]}  # empty arguments do not override the YAML
    assert ("image", "/cam/front") in seg["remappings"]
    assert ("image/compressed", "/cam/front/compressed") in seg["remappings"]
    assert replay["executable"] == "replay_node"
    assert ("image", "/cam/front") in replay["remappings"]
    for executable in ("segment_node", "replay_node"):
        assert (ROOT / "scripts" / "ros" / executable).is_file()
    assert len(setup({**context, "replay": "false"})) == 1
    multi = setup({**context, "replay": "false", "cameras": "[front, rear]"})[0].kwargs
    assert multi["parameters"][1] == {"prompts": ["cup"], "cameras": ["front", "rear"]}
    # Not a terminal here (pytest captures stdout): no colour codes in the logs.
    assert seg["emulate_tty"] is False and replay["emulate_tty"] is False


def test_params_file_is_applied_on_top_of_the_package_config(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    seg = setup({**context, "params_file": "/robot/ovseg.yaml", "keyframes": "true"})[0].kwargs
    assert seg["parameters"] == [str(CONFIG), "/robot/ovseg.yaml", {"keyframes": True}]


def test_the_replay_publishes_depth_when_the_node_uses_it_from_any_source(monkeypatch, tmp_path):
    """use_depth from a params_file reaches the replay too (it only read the launch argument):
    the node subscribing depth must have a replay that publishes it."""
    setup, context = launch_setup(monkeypatch)
    base = {**context, "replay": "true", "node_name": "seg", "namespace": "robot1"}

    def replay_depth(**args) -> bool:
        return setup({**base, **args})[1].kwargs["parameters"][0]["depth"]

    assert replay_depth() is False  # the package's config/segment.yaml: false
    assert replay_depth(use_depth="true") is True
    for key in ("/**", "seg", "/robot1/seg", "robot1/seg", "/**/seg"):
        f = tmp_path / "p.yaml"
        f.write_text(yaml.safe_dump({key: {"ros__parameters": {"use_depth": True}}}))
        assert replay_depth(params_file=str(f)) is True, key
        assert replay_depth(params_file=str(f), use_depth="false") is False, key
    other = tmp_path / "other.yaml"  # another node's section does not count
    other.write_text(yaml.safe_dump({"/robot1/camera": {"ros__parameters": {"use_depth": True}}}))
    assert replay_depth(params_file=str(other)) is False


def test_the_launch_ends_with_the_node_and_fails_when_it_failed(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    seg = setup({**context, "replay": "true"})
    for action in seg[:2]:  # segmentation and replay node
        on_exit = action.kwargs["on_exit"]
        node = types.SimpleNamespace(name="segment_node-1")
        ended = on_exit(types.SimpleNamespace(returncode=0, action=node), None)
        assert ended[0].kwargs["event"].kwargs["reason"] == "segment_node-1 exited"
        with pytest.raises(RuntimeError, match="segment_node-1 exited with code 1"):
            on_exit(types.SimpleNamespace(returncode=1, action=node), None)


def test_rviz_without_rviz2_fails_before_starting_anything(monkeypatch):
    setup, context = launch_setup(monkeypatch, packages=())
    with pytest.raises(RuntimeError, match="rviz2 is not installed: sudo apt install ros-"):
        setup({**context, "rviz": "true", "replay": "true"})
    assert len(setup(context)) == 1  # without rviz:=true nothing needs it
    setup, context = launch_setup(monkeypatch, packages=("rviz2",))
    rviz = setup({**context, "rviz": "true"})[-1].kwargs
    assert rviz["executable"] == "rviz2" and rviz["arguments"][0] == "-d"
    written = yaml.safe_load(Path(rviz["arguments"][1]).read_text())  # from rviz/ovseg.rviz
    assert written["Visualization Manager"]["Global Options"]["Fixed Frame"] == "camera"
    Path(rviz["arguments"][1]).unlink()


def test_console_starts_ovseg_console_on_the_launched_node(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    assert len(setup(context)) == 1  # off by default
    actions = setup({**context, "console": "true", "namespace": "robot1", "node_name": "seg"})
    console = actions[-1].kwargs
    assert (console["package"], console["executable"]) == ("ovseg_ros", "ovseg")
    assert console["arguments"] == ["console", "--node", "/robot1/seg", "--host", "127.0.0.1",
                                    "--port", "8765"]
    assert "on_exit" not in console  # a client: the launch goes on without it
    assert (ROOT / "scripts" / "ros" / "ovseg").is_file()
    wide = setup({**context, "console": "true", "console_host": "0.0.0.0",
                  "console_port": "9000"})[-1].kwargs
    assert wide["arguments"][-4:] == ["--host", "0.0.0.0", "--port", "9000"]
    for port in ("http", "70000", "-1"):
        with pytest.raises(ConfigError, match="launch argument console_port"):
            setup({**context, "console": "true", "console_port": port})


def test_invalid_launch_argument_stops_the_launch_with_its_name(monkeypatch):
    setup, context = launch_setup(monkeypatch)
    with pytest.raises(ConfigError, match="launch argument prompts"):
        setup({**context, "prompts": "[]"})


def _config_params() -> dict:
    data = yaml.safe_load(CONFIG.read_text())
    assert list(data) == ["/**"], "use the /** wildcard so any node name/namespace matches"
    return data["/**"]["ros__parameters"]


def test_config_yaml_declares_every_parameter_with_its_default():
    params = _config_params()
    assert list(params) == [s.name for s in SETTINGS]
    for s in SETTINGS:
        value = params[s.name]
        assert type(value) is type(s.default), f"{s.name}: {value!r} is not a {s.kind}"
        assert value == s.default, f"{s.name}: the YAML should show the default"


def test_config_yaml_types_as_ros_reads_them():
    pytest.importorskip("rclpy")
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import parameter_dict_from_yaml_file

    read = parameter_dict_from_yaml_file(str(CONFIG), use_wildcard=True)
    for name, msg in read.items():
        if BY_NAME[name].default == []:
            continue  # an empty YAML list has no ROS type: see the rcl test below
        assert msg.value.type == P.descriptor(BY_NAME[name]).type, name
    assert read["prompts"].value.type == ParameterType.PARAMETER_STRING_ARRAY


def test_config_yaml_through_rcl_gives_the_node_its_defaults(ros_domain_id):
    """What a node started with --params-file (as ros2 launch does) declares: rcl's own YAML
    parser, including `cameras: []`, which rcl hands over unset."""
    pytest.importorskip("rclpy")
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    context = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(CONFIG)], context=context,
               domain_id=ros_domain_id)
    try:
        node = Node("ovseg", context=context)
        values = P.declare(node)
        assert values == {s.name: s.default for s in SETTINGS}
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_rviz_config_shows_every_output_as_shipped():
    """rviz/ovseg.rviz as shipped (the template the launch copies): the default preset's fixed
    frame and input, a display for every output RViz can draw, each on a reliable
    subscription (the node's publishers are reliable; best effort loses large images)."""
    from ovseg_ros.frame.outputs import FRAME_TABLE

    data = yaml.safe_load(RVIZ.read_text())
    manager = data["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == PRESETS["default"].frame
    displays = manager["Displays"]
    topics = {d["Topic"]["Value"]: d for d in displays}
    assert topics[PRESETS["default"].image]["Enabled"]  # the input
    assert topics[PRESETS["default"].image]["Topic"]["Reliability Policy"] == "Best Effort"
    drawable = {"sensor_msgs/msg/Image": "rviz_default_plugins/Image",
                "sensor_msgs/msg/PointCloud2": "rviz_default_plugins/PointCloud2",
                "visualization_msgs/msg/MarkerArray": "rviz_default_plugins/MarkerArray"}
    wanted = {f"/ovseg/{o.name}": drawable[o.msgtype] for o in FRAME_TABLE
              if o.msgtype in drawable} | {"/ovseg/query_markers":
                                           drawable["visualization_msgs/msg/MarkerArray"]}
    assert set(wanted) == {"/ovseg/points", "/ovseg/markers", "/ovseg/labels",
                           "/ovseg/confidence", "/ovseg/confidence_mono8", "/ovseg/overlay",
                           "/ovseg/query_markers", "/ovseg/instances", "/ovseg/detection_markers",
                           "/ovseg/hydra_instances"}
    for topic, kind in wanted.items():
        assert topics[topic]["Class"] == kind, topic
        assert topics[topic]["Topic"]["Reliability Policy"] == "Reliable", topic
    assert topics["/ovseg/overlay"]["Enabled"] and topics["/ovseg/points"]["Enabled"]
    cloud = topics["/ovseg/points"]
    assert cloud["Color Transformer"] == "RGB8"
    # The replay's frame_id is the default preset's frame: its clouds show in RViz as they are.
    assert PRESETS["default"].frame == ReplayConfig().frame_id
