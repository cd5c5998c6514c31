"""`ovseg prompts|query|param|watch` against a real node over rclpy, run as a user runs them:
the installed console script in a child process on this run's ROS_DOMAIN_ID. Each prints one
line per answer; with no node, one line and exit code 1 within the timeout; a refusal, the
node's reason and exit code 2. The node is the in-process segmentation node on the tiny model
(test/helpers/node_fixtures.py), in a namespace of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import rclpy  # noqa: F401  (these tests need it: an error, never a skip, without it)
from helpers.ros_helpers import image_fields_msg, make_picture, wait_for
from sensor_msgs.msg import Image

from ovseg_ros.msg import Segmentation
from ovseg_ros.node import qos as Q

OVSEG = Path(sys.executable).parent / "ovseg"  # the console script pip wrote into the venv


def ovseg(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    assert OVSEG.is_file(), f"{OVSEG} is missing: run scripts/setup.sh (pip installs it)"
    return subprocess.run([str(OVSEG), *args], capture_output=True, text=True, timeout=timeout)


def one_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def node(ros, module_seg_node):
    """(node, its name) of a running node; frames published to it while the module runs."""
    seg, ns = module_seg_node(prompts=["cat", "dog"])
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    msg = image_fields_msg(make_picture(32, 48), frame_id="cam")
    stop = threading.Event()

    def camera() -> None:  # 5 frames/s, as a slow camera
        while not stop.wait(0.2):
            pub.publish(msg)

    thread = threading.Thread(target=camera, daemon=True)
    thread.start()
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    assert wait_for(lambda: segs.count > 0, 120), "the node segmented no frame"
    yield seg, f"{ns}/ovseg"
    stop.set()
    thread.join(5)


def test_prompts_set_and_get(node):
    seg, name = node
    line = one_line(ovseg("prompts", "set", "person, chair, cat", "--node", name))
    vocab = seg.vocabulary()
    assert list(vocab.names) == ["person", "chair", "cat"]
    by_name = vocab.as_dict()
    assert line == (f"{name}: 3 classes: {by_name['person']} person, {by_name['chair']} chair, "
                    f"{by_name['cat']} cat")
    line = one_line(ovseg("prompts", "get", "--node", name))
    assert line.startswith(f"{name}: 3 classes: ") and f"{by_name['cat']} cat" in line
    assert line.endswith("; 0 background")


def test_prompts_refused_with_the_nodes_reason(node):
    seg, name = node
    before = seg.vocabulary().names
    out = ovseg("prompts", "set", "x" * 1200, "--node", name)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"ovseg: {name} refused the prompts: ") and "1000" in out.stderr
    assert len(out.stderr.splitlines()) == 1
    assert seg.vocabulary().names == before


def test_param_set_and_get(node):
    seg, name = node
    assert one_line(ovseg("param", "set", "threshold", "0.3", "--node", name)) == \
        f"{name}: threshold = 0.3"
    assert seg.get_parameter("threshold").value == 0.3
    assert one_line(ovseg("param", "get", "threshold", "--node", name)) == \
        f"{name}: threshold = 0.3"
    # "0" for a double is sent as 0.0 (typed by the settings schema), as ROS requires.
    assert one_line(ovseg("param", "set", "threshold", "0", "--node", name)).endswith("= 0.0")
    assert seg.get_parameter("threshold").value == 0.0
    out = ovseg("param", "set", "threshold", "2", "--node", name)
    assert out.returncode == 2 and "outside [0, 1]" in out.stderr, out.stderr
    assert seg.get_parameter("threshold").value == 0.0
    out = ovseg("param", "get", "no_such_parameter", "--node", name)
    assert out.returncode == 2 and "no parameter 'no_such_parameter'" in out.stderr
    # A list parameter from comma-separated text, as doc/node.md shows it.
    assert one_line(ovseg("param", "set", "prompts", "cat, dog", "--node", name)) == \
        f"{name}: prompts = ['cat', 'dog']"
    assert list(seg.get_parameter("prompts").value) == ["cat", "dog"]
    assert one_line(ovseg("param", "get", "prompts", "--node", name)) == \
        f"{name}: prompts = ['cat', 'dog']"


def test_query_answers_one_line_per_phrase(node):
    seg, name = node
    one_line(ovseg("prompts", "set", "cat, dog", "--node", name))
    out = ovseg("query", "cat", "a red mug", "--node", name)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    cat_id = seg.vocabulary().as_dict()["cat"]
    assert lines[0].startswith(f"'cat' (id {cat_id}, in the vocabulary): score ")
    assert lines[1].startswith("'a red mug' (not in the vocabulary): score ")
    assert all("mask " in ln and "(frame " in ln and ", cam)" in ln for ln in lines)
    out = ovseg("query", "", "--node", name)  # refused by the node: its reason
    assert out.returncode == 2 and f"{name} refused the query" in out.stderr


def test_watch_prints_the_latest_summary(node):
    _, name = node
    out = ovseg("watch", "--node", name, "-n", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    for line in lines:
        assert line.startswith("frame ") and "(cam), vocabulary v" in line
        assert "inference " in line and " dropped" in line


# One of each way a client looks for the node: a service of its own, a parameter service, a
# topic (every command goes through one of these three paths in cli/node_session.py).
@pytest.mark.parametrize("argv", [
    ["prompts", "set", "person, chair"], ["param", "get", "threshold"], ["watch"],
])
def test_no_node_is_one_line_and_exit_1(argv):
    out = ovseg(*argv, "--node", "/nobody_here", "--timeout", "1", timeout=60)  # or it hangs
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("ovseg: no node /nobody_here answered within 1 s; is it "
                               "running, in this ROS_DOMAIN_ID?")
    assert os.environ["ROS_DOMAIN_ID"] in lines[0]


def test_default_node_and_a_wait_it_announces():
    """Without --node, /ovseg; past NOTICE_AFTER_S (3 s) without it, one line says the client
    waits, then the no-node line."""
    out = ovseg("prompts", "get", "--timeout", "4", timeout=60)  # no /ovseg in this domain
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines == [
        "ovseg: waiting up to 4 s for /ovseg/get_prompts (is the node starting?)",
        lines[1]], out.stderr
    assert lines[1].startswith("ovseg: no node /ovseg answered within 4 s; is it running, "
                               "in this ROS_DOMAIN_ID?")
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST finds nodes on this machine only" in lines[1]


def test_a_client_started_before_the_node_waits_for_it(ros, tiny):
    """The README's order: the node in the background, the command at once. The command waits
    (saying so) and answers once the node is up."""
    from helpers.node_fixtures import NodeFactory

    ns = f"/late{os.getpid()}"
    client = subprocess.Popen([str(OVSEG), "prompts", "get", "--node", f"{ns}/ovseg",
                               "--timeout", "300"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    factory = NodeFactory(ros, tiny)
    try:
        notice = client.stderr.readline()  # the client is waiting: no node yet
        assert notice == f"ovseg: waiting up to 300 s for {ns}/ovseg/get_prompts (is the " \
                         "node starting?)\n"
        factory(namespace=ns, prompts=["cat", "dog"])
        out, err = client.communicate(timeout=300)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        factory.close()
    assert client.returncode == 0, err
    assert out == f"{ns}/ovseg: 2 classes: 1 cat, 2 dog; 0 background\n"
    assert "Traceback" not in err


def test_the_client_commands_import_no_model_and_need_rclpy_only_when_run():
    """`ovseg` without rclpy: a client command says what it needs in one line, and loads no
    model module (torch) on the way. (`ovseg --help` lists the clients:
    test/system/test_workspace_build.py.)"""
    code = ("import sys\n"
            "sys.modules['rclpy'] = None  # as in a venv without ROS: import rclpy fails\n"
            "from ovseg_ros.cli.entry import main\n"
            "rc = main(sys.argv[1:])\n"
            "assert 'torch' not in sys.modules, 'a client command imported torch'\n"
            "sys.exit(rc)\n")
    out = subprocess.run([sys.executable, "-c", code, "prompts", "get"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("ovseg: this command talks to a running node over ROS 2 and "
                                 "needs rclpy") and len(out.stderr.splitlines()) == 1
