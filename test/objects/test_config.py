"""The objects' settings: declared once (ObjectsConfig), part of the node's parameters, the
generated docs and the CLI options, validated like every other setting."""

from __future__ import annotations

import argparse

import pytest

from ovseg_ros.core.settings import ConfigError, settings_of
from ovseg_ros.objects import ObjectsConfig
from ovseg_ros.settings.options import add_objects_options, objects_from_args
from ovseg_ros.settings.parameters import BY_NAME, DYNAMIC, GROUPS, build_all, build_configs


def test_defaults_are_the_settings_defaults_and_in_the_schema():
    cfg = ObjectsConfig()
    for s in settings_of(ObjectsConfig):
        assert getattr(cfg, s.name) == s.default and BY_NAME[s.name] == s
        assert s.group == "objects"
    assert "objects" in GROUPS and cfg.objects is False and cfg.trim == (5.0, 95.0)
    assert {"object_min_area", "track_max_age_s", "box_trim_percent"} <= DYNAMIC
    assert {"objects", "hydra_instances"}.isdisjoint(DYNAMIC)


def test_build_all_names_every_problem_and_build_configs_keeps_its_shape():
    configs = build_all({"objects": True, "object_min_area": 0.01, "threshold": 0.2})
    assert configs.objects.objects is True and configs.objects.object_min_area == 0.01
    assert configs.segmenter.threshold == 0.2
    assert len(build_configs({})) == 3
    with pytest.raises(ConfigError) as err:
        build_all({"object_min_area": 2.0, "box_trim_percent": 30.0, "device": "tpu"})
    text = str(err.value)
    for fragment in ("object_min_area=2.0 is outside [0, 1]", "box_trim_percent=30.0",
                     "tpu"):
        assert fragment in text


def test_cli_options_come_from_the_schema():
    parser = argparse.ArgumentParser()
    add_objects_options(parser)
    args = parser.parse_args(["--objects", "--object-min-area", "0.002",
                              "--object-close-gaps-px", "3", "--no-hydra-instances"])
    cfg = objects_from_args(args)
    assert cfg == ObjectsConfig(objects=True, object_min_area=0.002, object_close_gaps_px=3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--track-min-iou", "0"])


def test_the_schema_imports_without_opencv_scipy_or_torch():
    """The launch file and the CLI read the settings: objects' config must stay light."""
    import subprocess
    import sys

    code = ("import sys, ovseg_ros.settings.parameters; "
            "heavy = [m for m in ('cv2', 'scipy', 'torch') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
