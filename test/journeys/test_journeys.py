"""The journeys a user takes, in the environments users get (not only the one CI set up).

Run by .ci/run in a stage of its own, right after the README's set-up alone (`bash
scripts/setup.sh`, no test interfaces) and before the test set-up extends it; not part of the
whole suite (test/conftest.py collects this folder only with OVSEG_JOURNEYS=1):

    bash scripts/setup.sh && source scripts/env.sh && OVSEG_JOURNEYS=1 pytest test/journeys

1. The default install: `python -m ovseg_ros.bag.sample` writes a small MCAP bag and `ovseg bag`
   labels it (a label image per frame and a vision_msgs/msg/LabelInfo message, read back with
   the `mcap` library); the node started with the README's own command offers `~/label_info`
   as vision_msgs/msg/LabelInfo, and every `ovseg` line of the README's default-install block
   runs against it as written, one line of output each.
2. A fresh venv with no ROS at all (torch hard-linked from this venv, then `pip install` of a
   copy of the checkout): `ovseg segment` writes label PNGs and `ovseg bag` labels the bag.

The plain colcon workspace journey (`ovseg --help` from its install tree) is
test/system/test_workspace_build.py, in the whole suite on every distro.

The model is the tests' seeded tiny one (or random ViT-B-16 weights for `ovseg segment`):
nothing is downloaded, and the journeys check the install, not the labels.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.ros_helpers import RosHarness, image_fields_msg, make_picture, wait_for
from helpers.tiny_models import tiny_files

ROOT = Path(__file__).resolve().parents[2]
TEST_DIR = ROOT / "test"
README = ROOT / "README.md"
PROMPTS = "person, chair"
TINY = ["--model", "ovseg-tiny", "--clip-weights", "random", "--heads", "random"]


def readme_default_install() -> list[str]:
    """The README's default-install block as commands (continuations joined, comments and
    the trailing `&` dropped)."""
    text = README.read_text()
    block = re.search(r"<!-- default install begin.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no default-install block"
    joined = block.group(1).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[-1] == "&":
            words = words[:-1]
        if words:
            out.append(shlex.join(words))
    return out


def mcap_messages(bag: Path) -> list[tuple[str, str, object]]:
    """(topic, schema name, decoded message) of every message, decoded by `mcap` with the
    definitions embedded in the file."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out = []
    for file in sorted(bag.glob("*.mcap")):
        with file.open("rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for schema, channel, _, decoded in reader.iter_decoded_messages(
                    log_time_order=True):
                out.append((channel.topic, schema.name, decoded))
    return out


def check_labelled_bag(out: Path, frames: int, prompts: list[str]) -> None:
    messages = mcap_messages(out)
    labels = [m for t, s, m in messages if t == "/ovseg/labels" and s == "sensor_msgs/msg/Image"]
    inputs = [m for t, s, m in messages if t == "/camera/image_raw"]
    assert len(labels) == len(inputs) == frames, sorted({(t, s) for t, s, _ in messages})
    for label, image in zip(labels, inputs, strict=True):  # one label image per frame
        assert label.encoding == "mono8" and label.header.stamp == image.header.stamp
        assert (label.height, label.width) == (image.height, image.width)
    infos = [m for t, s, m in messages if s == "vision_msgs/msg/LabelInfo"]
    assert infos, "no vision_msgs/msg/LabelInfo in the output"
    names = [c.class_name for c in infos[-1].class_map]
    assert all(p in names for p in prompts), names


@pytest.fixture(scope="module")
def sample_bag(tmp_path_factory) -> Path:
    """3 frames at 32 px, written by the command the README's bag page shows."""
    folder = tmp_path_factory.mktemp("bags")
    done = subprocess.run([sys.executable, "-m", "ovseg_ros.bag.sample", str(folder / "rec"),
                           "--frames", "3", "--size", "32"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return folder / "rec"


def test_the_readme_block_is_the_default_installs(tmp_path):
    """What the node test below runs: the README's lines, which use nothing of ros2cli."""
    lines = readme_default_install()
    assert lines[0] == "source scripts/env.sh"
    assert lines[1].startswith("install/ovseg_ros/lib/ovseg_ros/segment_node --ros-args")
    assert all(line.startswith("ovseg ") for line in lines[2:]), lines
    assert not any(line.startswith("ros2 ") for line in lines)
    assert {shlex.split(line)[1] for line in lines[2:]} >= {"prompts", "param", "query", "watch"}


def test_ovseg_bag_in_the_default_install(sample_bag, tmp_path):
    ovseg = shutil.which("ovseg")
    assert ovseg, "no ovseg on PATH: source scripts/env.sh after scripts/setup.sh"
    out = tmp_path / "labelled"
    done = subprocess.run([ovseg, "bag", str(sample_bag), "-o", str(out), "--prompts", PROMPTS,
                           *TINY], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    check_labelled_bag(out, 3, ["person", "chair"])


@pytest.fixture(scope="module")
def readme_node(tmp_path_factory, ros_domain_id):
    """The README's node line, run as written from the repository root, with the tiny model's
    files appended (a sitecustomize registers it with open_clip) and a camera publishing on the
    README's topic. Yields the harness; the node is ended after."""
    tmp = tmp_path_factory.mktemp("node")
    name, clip, heads = tiny_files(tmp)
    inject = tmp / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import sys\nfrom pathlib import Path\n"
        f"sys.path.append({str(TEST_DIR)!r})\n"
        "from helpers.tiny_models import register_tiny\n"
        f"register_tiny(Path({str(tmp / 'configs')!r}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(inject), os.environ.get("PYTHONPATH")])))
    argv = shlex.split(readme_default_install()[1]) + [
        "-p", f"model:={name}", "-p", f"clip_weights:={clip}", "-p", f"heads:={heads}",
        "-p", "device:=cpu", "-p", "precision:=fp32", "-p", "backend:=torch",
        "-p", "input_size:=0"]
    image_topic = next(a.split(":=", 1)[1] for a in argv if a.startswith("image:="))
    log = (tmp / "node.log").open("w")
    node = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    try:
        with RosHarness(ros_domain_id) as ros:
            from sensor_msgs.msg import Image

            from ovseg_ros.node import qos as Q

            pub = ros.helper.create_publisher(Image, image_topic, Q.reliable(5))
            msg = image_fields_msg(make_picture(32, 48), frame_id="camera_color_optical_frame")

            def camera() -> None:
                while not stop.wait(0.25):
                    pub.publish(msg)

            thread = threading.Thread(target=camera, daemon=True)
            thread.start()
            yield ros, node, tmp / "node.log"
            stop.set()
            thread.join(5)
    finally:
        stop.set()
        node.terminate()
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
        log.close()


@pytest.mark.timeout(900)
def test_the_node_offers_label_info_and_answers_the_readme_commands(readme_node):
    from vision_msgs.msg import LabelInfo  # built by scripts/setup.sh in every install

    from ovseg_ros.node import qos as Q

    ros, node, log = readme_node

    def info_types() -> list[str]:
        return [i.topic_type for i in ros.helper.get_publishers_info_by_topic(
            "/ovseg/label_info")]

    assert wait_for(lambda: bool(info_types()) or node.poll() is not None, 180), \
        log.read_text()
    assert info_types() == ["vision_msgs/msg/LabelInfo"], log.read_text()
    infos = ros.collect(LabelInfo, "/ovseg/label_info", Q.latched())
    assert wait_for(lambda: infos.count > 0, 60), "the latched LabelInfo did not arrive"
    for line in readme_default_install()[2:]:  # as written, from the repository root
        deadline = time.monotonic() + 120
        while True:  # `query` and `watch` need a frame segmented first: retry until then
            done = subprocess.run(shlex.split(line), cwd=ROOT, capture_output=True, text=True,
                                  timeout=120)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        assert done.returncode == 0, f"{line}: {done.stderr}\n{log.read_text()[-2000:]}"
        assert len(done.stdout.splitlines()) == 1, f"{line}: {done.stdout}"
        assert "Traceback" not in done.stderr
    prompts = next(shlex.split(line)[3] for line in readme_default_install()
                   if line.startswith("ovseg prompts set"))
    wanted = [p.strip() for p in prompts.split(",")]
    assert wait_for(lambda: all(n in [c.class_name for c in infos.last().class_map]
                                for n in wanted), 60), "LabelInfo not republished"
    assert node.poll() is None and "Traceback" not in log.read_text()


# ---- a venv with no ROS --------------------------------------------------------------------------

def copy_checkout(dest: Path) -> None:
    """What a clone has: the files git tracks plus new ones it does not ignore."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], check=True, capture_output=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def ros_free(tmp_path_factory):
    """(ovseg executable, environment) of a fresh venv with `pip install <checkout>` and nothing
    of ROS; removed after. Next to the checkout, so torch can be hard-linked from this venv."""
    venv = ROOT / ".venv-journey"
    shutil.rmtree(venv, ignore_errors=True)
    env = {"HOME": os.environ["HOME"], "PATH": f"{venv}/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", "OVSEG_CACHE": str(tmp_path_factory.mktemp("cache"))}
    try:
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv",
                        str(venv)], check=True, timeout=300)
        linked = subprocess.run([sys.executable, str(ROOT / "scripts" / "link_venv_packages.py"),
                                 str(venv), "torch", "torchvision", "--skip", "setuptools"],
                                capture_output=True, text=True, timeout=600)
        if linked.returncode != 0:  # another file system: as scripts/setup.sh does
            subprocess.run([f"{venv}/bin/python", "-m", "pip", "install", "-q",
                            "torch==2.14.1", "torchvision==0.29.1"], env=env, check=True,
                           timeout=1200)
        source = tmp_path_factory.mktemp("clone") / "ovseg_ros"
        copy_checkout(source)
        pip = subprocess.run([f"{venv}/bin/python", "-m", "pip", "install", "-q",
                              "--progress-bar", "off", str(source)], env=env,
                             capture_output=True, text=True, timeout=1200)
        assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
        probe = subprocess.run([f"{venv}/bin/python", "-c", "import rclpy"], env=env,
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0, "rclpy is importable in the ROS-free venv"
        yield f"{venv}/bin/ovseg", env
    finally:
        shutil.rmtree(venv, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the venv's pip install may download its dependencies first
def test_ovseg_segment_without_ros(ros_free, tmp_path):
    ovseg, env = ros_free
    photo = next(p for p in sorted((ROOT / "samples").iterdir()) if p.suffix in (".jpg", ".png"))
    done = subprocess.run([ovseg, "segment", str(photo), "--prompts", PROMPTS, "-o",
                           str(tmp_path / "out"), "--clip-weights", "random", "--heads", "random",
                           "--backend", "torch", "--precision", "fp32", "--input-size", "64"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    labels = list((tmp_path / "out").glob("*_labels.png"))
    assert [p.name for p in labels] == [f"{photo.stem}_labels.png"]
    import cv2

    image = cv2.imread(str(labels[0]), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 2 and image.max() <= 2  # ids 0..2


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ovseg_bag_without_ros(ros_free, sample_bag, tmp_path):
    ovseg, env = ros_free
    out = tmp_path / "labelled"
    done = subprocess.run([ovseg, "bag", str(sample_bag), "-o", str(out), "--prompts", PROMPTS,
                           *TINY], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    check_labelled_bag(out, 3, ["person", "chair"])
