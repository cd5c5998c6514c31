"""Which test modules need ROS: the `ros` marker that test/conftest.py puts on their tests.

A module is a ROS test when it, or any module of this repository that it imports (directly or
through other modules, including imports inside functions), imports rclpy, a ROS message or
interface package, launch or ament_index_python. Static (AST), so it is known at collection,
before anything runs, and a new node test is picked up without a list to update.
`scripts/test.sh --ros-only` runs `pytest -m ros` (.ci/run does on Jazzy with
OVSEG_CI_SCOPE=ros).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

TEST_DIR = Path(__file__).resolve().parents[1]
ROOT = TEST_DIR.parent
ROS_TOP_LEVEL = {"rclpy", "launch", "launch_ros", "ament_index_python", "rosidl_runtime_py",
                 "builtin_interfaces", "rcl_interfaces"}
ROS_SUFFIXES = ("_msgs", "_srvs")
GENERATED = {"ovseg_ros.msg", "ovseg_ros.srv"}


def is_ros_module(name: str) -> bool:
    top = name.split(".")[0]
    return (top in ROS_TOP_LEVEL or top.endswith(ROS_SUFFIXES)
            or any(name == g or name.startswith(g + ".") for g in GENERATED))


def local_file(name: str) -> Path | None:
    """The repository file that `import name` runs: test/<name>.py, test/helpers/..., or a
    module of ovseg_ros."""
    parts = name.split(".")
    bases = [TEST_DIR, ROOT]  # test/helpers/..., then the repository (ovseg_ros...)
    for base in bases:
        stem = base.joinpath(*parts)
        for path in (stem.with_suffix(".py"), stem / "__init__.py"):
            if path.is_file():
                return path
    return None


def package_of(path: Path) -> list[str]:
    """The dotted package `path` belongs to inside the repository ([] for test/ files)."""
    rel = path.relative_to(ROOT).parent.parts
    return list(rel) if rel and rel[0] == "ovseg_ros" else []


def imported_names(path: Path) -> set[str]:
    """Every module name an import statement in `path` names (relative ones resolved), with
    its parent packages (whose __init__ runs first) and, for `from a import b`, also `a.b`
    (b may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package_of(path)
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module:
                continue
            found = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


@cache
def reaches_ros(path: Path, _visiting: frozenset[Path] = frozenset()) -> bool:
    for name in imported_names(path):
        if is_ros_module(name):
            return True
        dep = local_file(name)
        if dep is not None and dep != path and dep not in _visiting:
            if reaches_ros(dep, _visiting | {path}):
                return True
    return False
