"""Record the rosdistro facts test/system/test_dependencies.py checks package.xml against.

    python scripts/rosdistro_facts.py /path/to/rosdistro [--commit REF] [--also KEY ...]

Reads a clone of github.com/ros/rosdistro (a work tree, or a bare mirror read with `git show`)
and writes test/data/rosdistro_facts.json: for every dependency key of package.xml (and those
in CONSIDERED below or given with --also), what rosdep resolves it to on
Ubuntu 24.04 (noble: Jazzy, Kilted) and 22.04 (jammy: Humble), and for every ROS package named
in package.xml or pinned in scripts/distros/*.txt, the release version of its repository in
each distro. CI has no access to GitHub, so the test reads this file; rerun this script when
package.xml gains a key (the test says so).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test" / "data" / "rosdistro_facts.json"
ROSDEP_FILES = ("rosdep/base.yaml", "rosdep/python.yaml")
DISTROS = ("humble", "jazzy", "kilted")
UBUNTU = {"noble": "Jazzy, Kilted", "jammy": "Humble"}
# Keys recorded although package.xml does not name them (yet): considered and not used
# (python3-torch, python3-timm-pip: see package.xml), or what the 3D outputs and the ONNX
# backend would add. Recorded on every run, so the file does not depend on who ran it.
CONSIDERED = ("python3-torch", "python3-timm-pip", "python3-onnxruntime-pip", "geometry_msgs",
              "visualization_msgs")
DEP_TAGS = ("depend", "build_depend", "buildtool_depend", "exec_depend", "test_depend",
            "build_export_depend")


def package_keys(path: Path = ROOT / "package.xml") -> list[str]:
    root = ET.parse(path).getroot()
    return sorted({e.text.strip() for tag in DEP_TAGS for e in root.iter(tag)})


def pinned_ros_packages() -> list[str]:
    """ROS package names of the `ros-*` pins in scripts/distros/*.txt (ros-std-msgs: std_msgs)."""
    names = set()
    for path in (ROOT / "scripts" / "distros").glob("*.txt"):
        for line in path.read_text().splitlines():
            m = re.match(r"ros-([a-z0-9-]+)==", line.strip())
            if m:
                names.add(m.group(1).replace("-", "_"))
    return sorted(names)


class Source:
    """Files of one rosdistro commit, from a work tree or a (bare) git repository."""

    def __init__(self, path: Path, commit: str) -> None:
        self.path = path
        self.commit = self._git("rev-parse", commit).strip()
        self.date = self._git("log", "-1", "--format=%cI", self.commit).strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True,
                              capture_output=True, text=True).stdout

    def yaml(self, rel: str) -> dict:
        return yaml.safe_load(self._git("show", f"{self.commit}:{rel}"))


def resolve(entry, codename: str) -> dict | None:
    """What rosdep installs for one key on Ubuntu `codename`: {"apt": [...]} / {"pip": [...]}
    or None (no rule, or explicitly null)."""
    rule = entry.get("ubuntu", entry.get("*")) if isinstance(entry, dict) else None
    if isinstance(rule, dict) and ("pip" not in rule and "apt" not in rule
                                   and "packages" not in rule):
        rule = rule.get(codename, rule.get("*"))  # per-codename table
    if rule is None:
        return None
    if isinstance(rule, list):
        return {"apt": rule}
    if "pip" in rule:
        pip = rule["pip"]
        return {"pip": pip["packages"] if isinstance(pip, dict) else pip}
    if "apt" in rule:
        apt = rule["apt"]
        return {"apt": apt["packages"] if isinstance(apt, dict) else apt}
    return {"apt": rule["packages"]}


def released_versions(distribution: dict) -> dict[str, str]:
    """package name -> release version of its repository, for one distribution.yaml."""
    out = {}
    for repo, spec in distribution["repositories"].items():
        release = spec.get("release")
        if not release or "version" not in release:
            continue
        for pkg in release.get("packages", [repo]):
            out[pkg] = release["version"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rosdistro", type=Path)
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--also", action="append", default=[], help="another rosdep key to record")
    args = ap.parse_args()
    src = Source(args.rosdistro, args.commit)
    rules = {}
    for rel in ROSDEP_FILES:
        for key, entry in src.yaml(rel).items():
            rules[key] = (rel, entry)
    releases = {d: released_versions(src.yaml(f"{d}/distribution.yaml")) for d in DISTROS}
    keys = sorted(set(package_keys()) | set(CONSIDERED) | set(args.also))
    facts = {
        "source": {"repository": "https://github.com/ros/rosdistro", "commit": src.commit,
                   "date": src.date, "written_by": "scripts/rosdistro_facts.py"},
        "ubuntu": UBUNTU,
        "rosdep": {},
        "ros_packages": {},
    }
    for key in keys:
        if key in rules:
            rel, entry = rules[key]
            facts["rosdep"][key] = {"file": rel, **{c: resolve(entry, c) for c in UBUNTU}}
    for pkg in sorted(set(keys) | set(pinned_ros_packages())):
        found = {d: releases[d][pkg] for d in DISTROS if pkg in releases[d]}
        if found:
            facts["ros_packages"][pkg] = found
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(facts, indent=1, sort_keys=True) + "\n")
    unknown = [k for k in keys if k not in facts["rosdep"] and k not in facts["ros_packages"]]
    print(f"wrote {OUT.relative_to(ROOT)} ({src.commit[:12]}, {src.date}); "
          f"unknown keys: {unknown or 'none'}")
    return 1 if unknown else 0


if __name__ == "__main__":
    raise SystemExit(main())
