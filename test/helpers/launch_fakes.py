"""launch/segment.launch.py without `launch` (it has no wheels): the module loaded from its file,
and its launch description run against small stand-ins for the few launch classes it uses,
which record their arguments. For the launch tests (test/node/test_launch_config.py,
test/node/test_camera_presets.py)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch" / "segment.launch.py"


def load_launch_module():
    spec = importlib.util.spec_from_file_location("segment_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class PackageNotFound(KeyError):
    pass


def fake_launch(monkeypatch, share: Path, packages: tuple[str, ...] = ("rviz2",)) -> None:
    """Stand-ins for the launch classes the launch file uses, recording their arguments;
    `packages` are the ament packages that exist."""
    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context[self.name]

    def prefix(pkg):
        if pkg not in packages:
            raise PackageNotFound(pkg)
        return "/opt/ros/x"

    mods = {
        "launch": {"LaunchDescription": Recorder},
        "launch.actions": {"DeclareLaunchArgument": Recorder, "OpaqueFunction": Recorder,
                           "EmitEvent": Recorder},
        "launch.events": {"Shutdown": Recorder},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Recorder},
        "ament_index_python": {},
        "ament_index_python.packages": {"get_package_share_directory": lambda pkg: str(share),
                                        "get_package_prefix": prefix,
                                        "PackageNotFoundError": PackageNotFound},
    }
    for name, attrs in mods.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))


def launch_setup(monkeypatch, **fake):
    """(setup, context): the launch's OpaqueFunction and every argument at its default; call
    setup({**context, name: value}) for the actions a launch with those arguments starts."""
    fake_launch(monkeypatch, ROOT, **fake)
    module = load_launch_module()
    ld = module.generate_launch_description()
    declared = [a for a in ld.args[0] if "default_value" in a.kwargs]
    assert [a.args[0] for a in declared] == list(module.arguments())
    setup = next(a for a in ld.args[0] if "function" in a.kwargs).kwargs["function"]
    context = {name: default for name, (default, _) in module.arguments().items()}
    return setup, context
