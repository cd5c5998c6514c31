"""Launch file, parameter YAML and RViz config against the node's declared parameters.

`launch`/`launch_ros` have no wheels, so the launch file is checked with `ast` and run against
small stand-ins for the few launch classes it uses; none of this needs rclpy.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

from ovseg_ros.node import params as P

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "segment.launch.py"
CONFIG = ROOT / "config" / "segment.yaml"
RVIZ = ROOT / "rviz" / "ovseg.rviz"


def _assignments(path: Path) -> dict[str, object]:
    """Module-level NAME = <literal> assignments of a Python file, without importing it."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                out[target.id] = ast.literal_eval(value)
            except ValueError:
                pass
    return out


def _load_launch_module():
    spec = importlib.util.spec_from_file_location("segment_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    _load_launch_module()  # importable without launch installed


def test_launch_parameters_exist_on_the_node():
    values = _assignments(LAUNCH)
    arguments, forwarded = values["ARGUMENTS"], values["NODE_PARAMETER_ARGUMENTS"]
    for required in ("image", "namespace", "params_file", "device", "prompts", "replay"):
        assert required in arguments
    for name in forwarded:
        assert name in P.PARAM_NAMES, f"launch forwards unknown parameter {name!r}"
        assert name in arguments
    # Every string key of a dict literal in the launch file names a parameter of one of our
    # nodes (catches a typo in an inline parameters={...}).
    replay_params = _assignments(ROOT / "ovseg_ros" / "node" / "replay_node.py")["REPLAY_PARAMS"]
    for node in ast.walk(ast.parse(LAUNCH.read_text())):
        if isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    known = P.PARAM_NAMES | set(replay_params) | set(arguments)
                    assert key.value in known, f"unknown parameter {key.value!r}"


def test_launch_argument_overrides_are_valid_parameter_values():
    module = _load_launch_module()
    out = module.parameter_overrides({"device": "cuda:0", "prompts": "['person', 'door']",
                                      "qos": "", "input_transport": " compressed ",
                                      "cameras": "['front', 'rear']"})
    assert out == {"device": "cuda:0", "prompts": ["person", "door"],
                   "input_transport": "compressed", "cameras": ["front", "rear"]}
    assert module.parameter_overrides({"prompts": "chair"}) == {"prompts": ["chair"]}
    assert module.parameter_overrides({"cameras": "front", "prompts": ""}) == \
        {"cameras": ["front"]}
    for name, value in out.items():
        assert P.validate(name, value) is None


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _fake_launch(monkeypatch, share: Path):
    """Stand-ins for the launch classes the launch file uses, recording their arguments."""
    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    mods = {
        "launch": {"LaunchDescription": _Recorder},
        "launch.actions": {"DeclareLaunchArgument": _Recorder, "OpaqueFunction": _Recorder},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": _Recorder},
        "ament_index_python": {},
        "ament_index_python.packages": {"get_package_share_directory": lambda pkg: str(share)},
    }
    for name, attrs in mods.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))


def test_launch_description_runs_and_starts_the_right_nodes(monkeypatch):
    _fake_launch(monkeypatch, ROOT)
    module = _load_launch_module()
    ld = module.generate_launch_description()
    declared = [a for a in ld.args[0] if "default_value" in a.kwargs]
    assert {a.args[0] for a in declared} == set(module.ARGUMENTS)
    setup = next(a for a in ld.args[0] if "function" in a.kwargs).kwargs["function"]

    context = {name: default for name, (default, _) in module.ARGUMENTS.items()}
    context.update(image="/cam/front", namespace="robot1", prompts="['cup']", replay="true")
    actions = setup(context)
    seg, replay = actions[0].kwargs, actions[1].kwargs
    assert (seg["package"], seg["executable"], seg["namespace"]) == \
        ("ovseg_ros", "segment_node", "robot1")
    params_file, overrides = seg["parameters"]
    assert Path(params_file) == CONFIG
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


def _config_params() -> dict:
    data = yaml.safe_load(CONFIG.read_text())
    assert list(data) == ["/**"], "use the /** wildcard so any node name/namespace matches"
    return data["/**"]["ros__parameters"]


def test_config_yaml_declares_every_parameter_with_valid_documented_values():
    params = _config_params()
    assert set(params) <= P.PARAM_NAMES, set(params) - P.PARAM_NAMES
    assert set(params) == P.PARAM_NAMES, f"undocumented: {P.PARAM_NAMES - set(params)}"
    for name, value in params.items():
        assert P.validate(name, value) is None, (name, value, P.validate(name, value))
        default = P.SPECS[name].default
        assert type(value) is type(default), f"{name}: {value!r} is not a {type(default)}"
        assert value == default, f"{name}: the YAML should show the default"
    lines = CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        key = line.strip().split(":")[0]
        if line.startswith("    ") and not line.strip().startswith("#") and key in params:
            assert lines[i - 1].strip().startswith("#"), f"{key} has no comment above it"


def test_config_yaml_types_as_ros_reads_them():
    pytest.importorskip("rclpy")
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import parameter_dict_from_yaml_file

    read = parameter_dict_from_yaml_file(str(CONFIG), use_wildcard=True)
    for name, msg in read.items():
        if P.SPECS[name].default == []:
            continue  # an empty YAML list has no ROS type: see the rcl test below
        assert msg.value.type == P.descriptor(P.SPECS[name]).type, name
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
        assert values == {p.name: p.default for p in P.PARAMS}
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_rviz_config_shows_the_input_and_the_overlay():
    data = yaml.safe_load(RVIZ.read_text())
    displays = data["Visualization Manager"]["Displays"]
    images = {d["Topic"]["Value"]: d for d in displays
              if d["Class"] == "rviz_default_plugins/Image"}
    default_image = _assignments(LAUNCH)["ARGUMENTS"]["image"][0]
    assert default_image in images and images[default_image]["Enabled"]
    assert "/ovseg/overlay" in images and images["/ovseg/overlay"]["Enabled"]
