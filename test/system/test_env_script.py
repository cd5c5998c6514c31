"""scripts/env.sh as a user's shell sources it: discovery kept as the user set it (else this
machine only, said in one line), refused in a shell that sourced a ROS distro, and the prefix
look-up setup.sh uses to skip building vision_msgs where one is installed (scripts/distro.sh).

Each case runs a fresh `bash` with the variables env.sh itself sets removed, so nothing of this
test process's own sourced environment decides the result.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SET_BY_ENV_SH = ("OVSEG_ENV_DISTRO", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DISTRO",
                 "VIRTUAL_ENV", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")


def source_env(script: str, **env: str) -> subprocess.CompletedProcess:
    """`source scripts/env.sh; <script>` in a new bash, with `env` on top of a clean shell."""
    base = {k: v for k, v in os.environ.items() if k not in SET_BY_ENV_SH}
    return subprocess.run(["bash", "-c", f"source scripts/env.sh; rc=$?; {script}"],
                          cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
                          timeout=60)


def test_discovery_defaults_to_this_machine_and_says_so_in_one_line():
    out = source_env('echo "rc=$rc range=$ROS_AUTOMATIC_DISCOVERY_RANGE"')
    assert out.stdout.strip() == "rc=0 range=LOCALHOST", out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "LOCALHOST" in lines[0] and "ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET" in lines[0]


@pytest.mark.parametrize("chosen", ["SUBNET", "OFF", "SYSTEM_DEFAULT", "LOCALHOST"])
def test_a_discovery_range_the_user_set_is_kept_silently(chosen):
    out = source_env('echo "rc=$rc range=$ROS_AUTOMATIC_DISCOVERY_RANGE"',
                     ROS_AUTOMATIC_DISCOVERY_RANGE=chosen)
    assert out.stdout.strip() == f"rc=0 range={chosen}", out.stderr
    assert "discovery" not in out.stderr


def test_a_shell_with_a_sourced_ros_distro_is_refused_untouched():
    out = source_env('echo "rc=$rc venv=${VIRTUAL_ENV:-none} ament=${AMENT_PREFIX_PATH:-none}"',
                     ROS_DISTRO="jazzy", AMENT_PREFIX_PATH="/opt/ros/jazzy")
    assert out.stdout.strip() == "rc=1 venv=none ament=/opt/ros/jazzy", out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "ROS 2 jazzy" in lines[0] and "colcon workspace" in lines[0]


def test_sourcing_twice_in_one_shell_is_fine():
    out = source_env('source scripts/env.sh; echo "rc=$rc again=$? $OVSEG_ENV_DISTRO"')
    assert out.stdout.strip().startswith("rc=0 again=0 "), out.stderr


def test_package_prefix_lookup_skips_this_workspace(tmp_path):
    def make_prefix(path: Path, package: str) -> Path:
        index = path / "share" / "ament_index" / "resource_index" / "packages"
        index.mkdir(parents=True)
        (index / package).touch()
        return path

    mine = tmp_path / "ws" / "install"
    own = make_prefix(mine / "vision_msgs", "vision_msgs")
    apt = make_prefix(tmp_path / "opt" / "ros" / "jazzy", "vision_msgs")
    other = make_prefix(tmp_path / "other", "std_msgs")

    def lookup(prefixes: list[Path]) -> str:
        out = subprocess.run(
            ["bash", "-c", f'source scripts/distro.sh; _ovseg_package_prefix vision_msgs '
                           f'"{mine}"'],
            cwd=ROOT, env={**os.environ, "AMENT_PREFIX_PATH": ":".join(map(str, prefixes))},
            capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip()

    assert lookup([own, other]) == ""  # only our own build: build it again
    assert lookup([own, other, apt]) == str(apt)  # the real one from apt: use it
    assert lookup([]) == ""
