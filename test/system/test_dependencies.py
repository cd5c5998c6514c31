"""package.xml, requirements*.txt, setup.py and the distro pin files name the same dependencies.

CI cannot reach GitHub, so rosdistro's rosdep database and distribution files are read from
test/data/rosdistro_facts.json, recorded from github.com/ros/rosdistro at the commit it names
by scripts/rosdistro_facts.py. A key that rosdistro lacks can never get into that file, so a
package.xml key missing from it fails here until it is a real key.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import runpy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import setuptools
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
FACTS = json.loads((ROOT / "test" / "data" / "rosdistro_facts.json").read_text())
DISTRO_FILES = {p.stem: p for p in (ROOT / "scripts" / "distros").glob("*.txt")
                if p.stem != "common"}
REGENERATE = ("rerun `python scripts/rosdistro_facts.py <rosdistro clone>` if rosdistro has it"
              " (the facts are from commit " + FACTS["source"]["commit"][:12] + ")")

# The PyPI distribution that gives the same import as a Ubuntu package rosdep installs.
PYPI_FOR_APT = {"python3-numpy": "numpy", "python3-opencv": "opencv-python-headless",
                "python3-yaml": "pyyaml", "python3-tqdm": "tqdm", "python3-pytest": "pytest",
                "python3-pytest-timeout": "pytest-timeout", "python3-pil": "pillow",
                "python3-scipy": "scipy", "python3-aiohttp": "aiohttp",
                "python3-selenium": "selenium"}
# ROS packages in package.xml that a distro file does not pin, and why.
NO_WHEEL = {"launch", "launch_ros", "vision_msgs"}  # not on PyPI (tests build a vision_msgs copy)
COMES_WITH = {  # a dependency of a pinned wheel, whose pin fixes its version
    "rcl_interfaces": "ros-rclpy", "lifecycle_msgs": "ros-rclpy",
    "ament_index_python": "ros-rclpy", "rosidl_default_runtime": "ros-std-msgs"}
# Pins whose version is another distro's, because PyPI has no other build of that package.
FOREIGN_PINS = {("kilted", "python_cmake_module"): "PyPI has only 0.11.1 (Jazzy's release)"}
# Build tools one distro needs and the other does not (scripts/distros/*.txt say why).
DISTRO_ONLY = {"kilted": {"ament_cmake_ros_core"},
               "jazzy": {"ament_cmake_ros", "ament_cmake_gmock", "ament_cmake_gtest",
                         "ament_cmake_pytest"}}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_xml(tags: tuple[str, ...]) -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text.strip() for tag in tags for e in root.iter(tag)}


RUN_KEYS = package_xml(("depend", "exec_depend", "build_depend", "buildtool_depend"))
TEST_KEYS = package_xml(("test_depend",))


def requirement_lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            out += requirement_lines(path.parent / line[2:].strip())
        elif line:
            out.append(line)
    return out


def names(path: Path) -> set[str]:
    return {canonical(Requirement(line).name) for line in requirement_lines(path)}


def pins(path: Path) -> dict[str, str]:
    """ROS package name -> pinned version, for the `ros-*==V` lines of a distro file."""
    out = {}
    for line in requirement_lines(path):
        m = re.fullmatch(r"ros-([a-z0-9-]+)==([0-9.]+)", line)
        if m:
            out[m.group(1).replace("-", "_")] = m.group(2)
    return out


def pypi_names(key: str) -> set[str]:
    """What pip would call the packages rosdep installs for `key` on Ubuntu 24.04."""
    rule = FACTS["rosdep"][key]["noble"]
    if "pip" in rule:
        return {canonical(n) for n in rule["pip"]}
    assert all(a in PYPI_FOR_APT for a in rule["apt"]), f"{key}: add {rule['apt']} to PYPI_FOR_APT"
    return {canonical(PYPI_FOR_APT[a]) for a in rule["apt"]}


def test_every_package_xml_key_exists_in_rosdistro():
    for key in sorted(RUN_KEYS | TEST_KEYS):
        if key in FACTS["rosdep"]:
            assert FACTS["rosdep"][key]["noble"], f"{key}: rosdep has no rule for Ubuntu 24.04"
        else:
            released = FACTS["ros_packages"].get(key, {})
            assert {"jazzy", "kilted"} <= set(released), \
                f"{key}: neither a rosdep key nor a package released in Jazzy and Kilted; " \
                + REGENERATE


def test_requirements_are_the_rosdep_keys_plus_the_pip_only_list():
    python_keys = {k for k in RUN_KEYS if k in FACTS["rosdep"]}
    from_rosdep = set().union(*(pypi_names(k) for k in python_keys))
    pip_only = names(ROOT / "requirements-pip-only.txt")
    assert not from_rosdep & pip_only, "listed as pip-only, yet package.xml's keys install it"
    assert names(ROOT / "requirements.txt") == from_rosdep | pip_only


def test_pip_only_packages_have_no_rosdep_key_in_package_xml():
    # The recorded alternatives exist and are deliberately not used (package.xml says why).
    assert FACTS["rosdep"]["python3-torch"]["noble"] == {"apt": ["python3-torch"]}
    assert "python3-torch" not in RUN_KEYS
    for key, rule in FACTS["rosdep"].items():
        if key in RUN_KEYS and "pip" in rule["noble"]:
            assert not {canonical(n) for n in rule["noble"]["pip"]} & names(
                ROOT / "requirements-pip-only.txt"), key


def test_setup_py_installs_exactly_requirements_txt(monkeypatch):
    seen = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    assert seen["install_requires"] == requirement_lines(ROOT / "requirements.txt")
    assert seen["python_requires"] == ">=3.10"


def test_the_venvs_satisfy_requirements_txt():
    """The pins CI installs lie inside the ranges users get (checked on this venv)."""
    for line in requirement_lines(ROOT / "requirements.txt"):
        req = Requirement(line)
        version = md.version(req.name)
        assert req.specifier.contains(version, prereleases=True), (line, version)


def test_test_keys_are_the_ci_test_tools():
    tools = names(ROOT / "scripts" / "distros" / "common.txt")
    for key in TEST_KEYS:
        assert pypi_names(key) <= tools, key


@pytest.mark.parametrize("distro", sorted(DISTRO_FILES))
def test_every_ros_dependency_is_pinned_in_each_distro_file(distro):
    pinned = pins(DISTRO_FILES[distro])
    for key in sorted(RUN_KEYS - set(FACTS["rosdep"])):
        if key in NO_WHEEL:
            continue
        if key in COMES_WITH:
            parent = COMES_WITH[key]
            assert parent.removeprefix("ros-").replace("-", "_") in pinned, (key, parent)
            continue
        assert key in pinned, f"{key}: add `ros-{key.replace('_', '-')}==...` to {distro}.txt"


def test_the_unpinned_ros_dependencies_come_with_the_pinned_wheels():
    for key, parent in COMES_WITH.items():
        required = {canonical(Requirement(r).name) for r in md.requires(parent) or []}
        assert canonical("ros-" + key) in required, (key, parent)


@pytest.mark.parametrize("distro", sorted(DISTRO_FILES))
def test_every_ros_pin_is_that_distros_release(distro):
    assert distro in {"jazzy", "kilted"}, "record the new distro in scripts/rosdistro_facts.py"
    checked = 0
    for pkg, version in pins(DISTRO_FILES[distro]).items():
        released = FACTS["ros_packages"].get(pkg)
        if released is None:
            continue  # not a ROS package (ros-wheels-bootstrapper)
        ours, theirs = version.split(".")[:2], released.get(distro, "").split(".")[:2]
        if (distro, pkg) in FOREIGN_PINS:
            assert ours != theirs, f"{pkg}: {distro}'s own release is pinned now; drop the note"
            continue
        assert ours == theirs, f"{distro}.txt pins {pkg} {version}; {distro} releases " \
                               f"{released.get(distro, 'nothing')} (another distro's wheel?)"
        checked += 1
    assert checked >= 10


def test_both_distros_pin_the_same_ros_packages():
    sets = {d: set(pins(p)) - DISTRO_ONLY.get(d, set()) for d, p in DISTRO_FILES.items()}
    first = next(iter(sets.values()))
    for distro, pkgs in sets.items():
        assert pkgs == first, (distro, pkgs ^ first)
