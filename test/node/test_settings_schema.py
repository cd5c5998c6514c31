"""One schema: every front end agrees with the settings declared in ovseg_ros.core.config and
ovseg_ros.settings.parameters. Fails on any disagreement of a name, default, range, choices or doc
between the schema, the ROS parameters, config/segment.yaml, the launch file, the CLI and the
parameter reference (doc/parameters.md, doc/node.md)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ovseg_ros.cli.main import build_parser
from ovseg_ros.core.config import ClipDiyConfig, KeyframeConfig, SegmenterConfig
from ovseg_ros.core.settings import ConfigError, settings_of
from ovseg_ros.node import paramdocs
from ovseg_ros.settings.parameters import SETTINGS, NodeConfig

ROOT = Path(__file__).resolve().parents[2]
CORE = settings_of(SegmenterConfig) + settings_of(KeyframeConfig)


def test_dataclass_defaults_are_the_settings_defaults():
    for cls in (SegmenterConfig, KeyframeConfig, NodeConfig):
        instance = cls()
        for s in settings_of(cls):
            assert getattr(instance, s.name) == s.default, s.name
    assert settings_of(ClipDiyConfig) == ()  # method geometry, not a user setting


def test_ros_descriptors_follow_the_schema():
    pytest.importorskip("rcl_interfaces")
    from ovseg_ros.node import params as P

    for s in SETTINGS:
        d = P.descriptor(s)
        assert d.name == s.name and s.doc in d.description
        assert d.additional_constraints == s.constraints
        if s.low is not None:
            r = (d.floating_point_range or d.integer_range)[0]
            assert (r.from_value, r.to_value) == (s.low, s.high), s.name
        else:
            assert not d.floating_point_range and not d.integer_range, s.name


def _segment_actions() -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["segment"]._actions}


def test_cli_options_follow_the_schema():
    actions = _segment_actions()
    for s in CORE:
        a = actions[s.name]
        assert a.option_strings[0] == "--" + s.name.replace("_", "-"), s.name
        assert a.default == s.default, s.name
        assert s.doc.replace("%", "%%") in a.help and s.constraints.replace("%", "%%") in a.help
    assert actions["overlay_alpha"].default == NodeConfig().overlay_alpha


@pytest.mark.parametrize("argv, fragment", [
    (["--precision", "fp8"], "precision='fp8' is not one of: auto, fp32, bf16, fp16"),
    (["--threshold", "1.5"], "threshold=1.5 is outside [0, 1]"),
    (["--input-size", "-1"], "input_size=-1 is outside [0, 4096]"),
    (["--heads-sha256", "abc"], "64 hexadecimal digits"),
    (["--device", "tpu"], "use auto, cpu, cuda or cuda:N"),
])
def test_cli_refuses_what_the_schema_refuses(argv, fragment, capsys):
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["segment", "x.png", "--prompts", "a", *argv])
    assert err.value.code == 2 and fragment in capsys.readouterr().err


def test_cli_builds_the_core_configs_from_its_options():
    from ovseg_ros.settings.options import config_from_args, keyframes_from_args

    args = build_parser().parse_args(["segment", "x.png", "--prompts", "a", "--no-background",
                                      "--keyframe-every-n", "5", "--threads", "1"])
    cfg, kf = config_from_args(args), keyframes_from_args(args)
    assert (cfg.background, cfg.threads, kf.keyframe_every_n) == (False, 1, 5)
    assert kf.enabled and not kf.asynchronous  # files: keyframes fused on their own frame


def test_launch_arguments_follow_the_schema():
    spec = importlib.util.spec_from_file_location("launch_file", paramdocs.LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.arguments()
    for s in SETTINGS:
        default, text = args[s.name]
        assert default == "" and s.doc in text and s.format(s.default) in text, s.name
        typed = s.default if s.kind is str else s.format(s.default)  # as a user types it
        assert module.parameter_overrides({s.name: typed}) in (
            {s.name: s.default}, {})  # {} only for the empty default, "" or []


def test_generated_files_are_current():
    """config/segment.yaml and the doc tables are generated from the schema; edit the
    setting and run `python -m ovseg_ros.node.paramdocs --write`."""
    assert paramdocs.stale() == []
    parameters = paramdocs.PARAMETERS_PAGE.read_text()
    for s in SETTINGS:
        assert f"| `{s.name}` |" in parameters, s.name
    launch = paramdocs.LAUNCH_PAGE.read_text()
    for name in module_launch_arguments():
        assert f"| `{name}` |" in launch, name


def module_launch_arguments() -> list[str]:
    return list(paramdocs._launch_arguments())  # the launch file's own LAUNCH_ARGUMENTS


def test_check_command_fails_on_a_stale_file(tmp_path, monkeypatch):
    stale_yaml = tmp_path / "segment.yaml"
    stale_yaml.write_text(paramdocs.yaml_text().replace("threshold: 0.0", "threshold: 0.1"))
    monkeypatch.setattr(paramdocs, "YAML", stale_yaml)
    assert paramdocs.main(["--check"]) == 1
    done = subprocess.run([sys.executable, "-m", "ovseg_ros.node.paramdocs", "--check"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr  # the real files are current


def test_invalid_settings_are_all_named_at_once():
    with pytest.raises(ConfigError) as err:
        SegmenterConfig(mode="tiles", input_size=-3, threshold=float("nan"))
    text = str(err.value)
    assert "mode='tiles'" in text and "input_size=-3" in text and "threshold must be finite" in text
