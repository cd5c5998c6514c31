"""The package built the way ROS users build it: this repository as ws/src/ovseg_ros in a fresh
colcon workspace outside it, `colcon build`, `source ws/install/setup.bash`, then the installed
segment_node serves a frame over rclpy and the `ovseg` command runs from the install tree.

The workspace gets a copy of the files git tracks (plus new, not ignored ones): what a clone
has, so no venv, build or install folder of this checkout comes along. The build and the node
see the venv only as the underlay (the wheels' ROS prefix, like /opt/ros/<distro>), never this
checkout's own install space or source tree. The one thing added to the node's process is a
sitecustomize on PYTHONPATH that registers the tiny test model with open_clip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers.ros_helpers import RosHarness, image_fields_msg, make_picture
from helpers.tiny_models import tiny_files

pytestmark = pytest.mark.slow  # minutes of processes, load or signals: not the inner loop

TEST_DIR = Path(__file__).resolve().parents[1]
ROOT = TEST_DIR.parent
PATH_VARS = ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH", "PYTHONPATH",
             "LD_LIBRARY_PATH", "PATH")


def underlay_env() -> dict[str, str]:
    """This process's environment without this checkout's install spaces and source overlay
    (env.sh adds them), keeping the venv: what a shell with only the underlay sourced has."""
    def ours(entry: str) -> bool:
        p = Path(entry)
        return p == ROOT or any(p.is_relative_to(d) for d in own_dirs)

    own_dirs = [d for d in ROOT.iterdir() if d.name.startswith(("install", "build"))]
    own_dirs += [v / "ovseg_src" for v in ROOT.glob(".venv*")]
    env = dict(os.environ)
    for var in PATH_VARS:
        kept = [e for e in env.get(var, "").split(os.pathsep) if e and not ours(e)]
        if kept:
            env[var] = os.pathsep.join(kept)
        else:
            env.pop(var, None)
    return env


def copy_sources(dest: Path) -> None:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], check=True, capture_output=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():  # deleted but still in the index: skip
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def sourced(ws: Path, command: str) -> list[str]:
    """bash running `command` after `source ws/install/setup.bash`, as a user's shell does."""
    return ["bash", "-c", f'source "{ws}/install/setup.bash" && {command}']


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("colcon") / "ws"
    copy_sources(ws / "src" / "ovseg_ros")
    assert not list((ws / "src" / "ovseg_ros").glob(".venv*"))
    env = underlay_env()
    build = subprocess.run(["colcon", "build"], cwd=ws, env=env, capture_output=True,
                           text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return ws, env


def test_installed_package_is_complete_and_found_from_the_workspace(workspace):
    ws, env = workspace
    install = ws / "install" / "ovseg_ros"
    for rel in ("lib/ovseg_ros/segment_node", "lib/ovseg_ros/replay_node",
                "lib/ovseg_ros/ovseg", "bin/ovseg",
                "share/ovseg_ros/launch/segment.launch.py", "share/ovseg_ros/config/segment.yaml",
                "share/ovseg_ros/rviz/ovseg.rviz", "share/ovseg_ros/package.xml",
                "share/ament_index/resource_index/packages/ovseg_ros"):
        assert (install / rel).exists(), rel
    probe = ("python -c 'import ovseg_ros.msg, ovseg_ros.node.segment_node as n; "
             "from ament_index_python.packages import get_package_share_directory as share; "
             "print(n.__file__); print(ovseg_ros.msg.__file__); print(share(\"ovseg_ros\"))'")
    out = subprocess.run(sourced(ws, probe), cwd=ws, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    paths = [Path(line) for line in out.stdout.split()]
    assert len(paths) == 3 and all(p.is_relative_to(install) for p in paths), out.stdout


def test_ovseg_command_runs_from_the_install_tree(workspace):
    """`ovseg` is on PATH after sourcing the workspace (install/ovseg_ros/bin, ahead of the
    underlay's), and lib/ovseg_ros/ovseg is what `ros2 run ovseg_ros ovseg` starts."""
    ws, env = workspace
    install = ws / "install" / "ovseg_ros"
    out = subprocess.run(sourced(ws, "command -v ovseg && ovseg --help"), cwd=ws, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    found, help_text = out.stdout.split("\n", 1)
    assert Path(found) == install / "bin" / "ovseg"
    for command in ("segment", "bag", "labelspace", "eval", "weights", "prompts", "query",
                    "param", "watch"):
        assert command in help_text, command
    ros2_run = subprocess.run(sourced(ws, f'"{install}/lib/ovseg_ros/ovseg" labelspace '
                                          f'--prompts "cup, door" -o "{ws}/space"'),
                              cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    assert ros2_run.returncode == 0, ros2_run.stderr
    assert list((ws / "space").glob("*.yaml")), "labelspace wrote no YAML"
    # The node clients work from the workspace too (rclpy from the underlay): one line, exit 1.
    client = subprocess.run(sourced(ws, "ovseg prompts get --node /nobody --timeout 1"),
                            cwd=ws, env=env, capture_output=True, text=True, timeout=120)
    assert client.returncode == 1 and client.stderr.startswith("ovseg: no node /nobody")


def test_installed_node_serves_a_frame(workspace, tmp_path, ros_domain_id):
    from sensor_msgs.msg import Image

    from ovseg_ros.node import qos as Q

    ws, env = workspace
    name, clip, heads = tiny_files(tmp_path)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import sys\nfrom pathlib import Path\n"
        f"sys.path.append({str(TEST_DIR)!r})\n"
        "from helpers.tiny_models import register_tiny\n"
        f"register_tiny(Path({str(tmp_path / 'configs')!r}))\n")
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(inject),
                                                               env.get("PYTHONPATH")]))}
    exe = ws / "install" / "ovseg_ros" / "lib" / "ovseg_ros" / "segment_node"
    args = " ".join(f"-p {k}:={v}" for k, v in {
        "model": name, "clip_weights": clip, "heads": heads, "device": "cpu",
        "precision": "fp32", "input_size": 0,
        "prompts": "\"['sky','grass']\""}.items())
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        node = subprocess.Popen(sourced(ws, f'exec "{exe}" --ros-args -r __ns:=/ws_build '
                                            f"{args}"),
                                cwd=ws, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with RosHarness(ros_domain_id) as ros:
            labels = ros.collect(Image, "/ws_build/ovseg/labels")
            pub = ros.helper.create_publisher(Image, "/ws_build/image", Q.reliable(5))
            msg = image_fields_msg(make_picture(32, 48))
            deadline = time.monotonic() + 240
            while labels.count == 0 and node.poll() is None and time.monotonic() < deadline:
                pub.publish(msg)
                time.sleep(0.2)
            assert labels.count >= 1, log_path.read_text()
            got = labels.last()
            assert (got.height, got.width, got.encoding) == (32, 48, "mono8")
            assert got.header.frame_id == "cam"
            assert node.poll() is None  # still serving
    finally:
        node.terminate()
        node.wait(30)
    assert "Traceback" not in log_path.read_text()
