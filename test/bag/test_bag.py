"""`ovseg bag` over bags the tests write: copy-through, both readers, MCAP and sqlite3 (without
definitions, as Humble wrote), raw and compressed images, registered depth at two resolutions,
a type no typestore knows, determinism, slices, interruption and resume, and bad inputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.bag_helpers import (
    DEPTH,
    first_difference,
    model_args,
    read_mcap,
    read_rosbags,
    run_bag,
)

pytest.importorskip("rclpy")
from ovseg_ros.bag.sample import UNKNOWN_TYPE, write_sample_bag  # noqa: E402

OUT_TOPICS = {"/ovseg/labels", "/ovseg/confidence", "/ovseg/segmentation",
              "/ovseg/confidence_mono8", "/ovseg/points", "/ovseg/markers", "/ovseg/label_map",
              "/ovseg/label_info"}


@pytest.fixture(scope="module")
def margs(tmp_path_factory) -> list[str]:
    return model_args(tmp_path_factory.mktemp("bag_model"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_sample_bag(tmp_path_factory.mktemp("bags") / "in", frames=4, size=48,
                            half_depth=True, unknown=True)


def outputs(messages):
    return [r for r in messages if r[0].startswith("/ovseg/")]


def test_copy_through_outputs_and_both_readers(tmp_path, sample, margs, capsys):
    out = tmp_path / "out"
    assert run_bag(sample, "-o", out, *margs, *DEPTH) == 0
    assert "4 frames" in capsys.readouterr().out
    inputs, written = read_rosbags(sample), read_rosbags(out)
    # every input message copied unchanged: topic, type, bag time, bytes
    copied = [r for r in written if not r[0].startswith("/ovseg/")]
    assert (diff := first_difference(copied, inputs)) is None, diff
    assert {r[0] for r in outputs(written)} == OUT_TOPICS
    assert sum(r[0] == "/ovseg/labels" for r in written) == 4
    assert any(r[1] == UNKNOWN_TYPE for r in written)
    # the second reader decodes every message with the definitions embedded in the file
    via_mcap, compressions = read_mcap(out)
    assert (diff := first_difference(via_mcap, written)) is None, diff
    assert compressions == {"zstd"}
    assert not list(out.glob("*.zstd")) and list(out.glob("out.mcap"))
    assert not (tmp_path / "out.partial").exists()
    # QoS metadata: the label map latched, as the node's publishers offer it
    from rosbags.highlevel import AnyReader
    from rosbags.interfaces import QosDurability

    with AnyReader([out]) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    assert qos["/ovseg/label_map"][0].durability == QosDurability.TRANSIENT_LOCAL
    assert qos["/ovseg/labels"][0].durability == QosDurability.VOLATILE
    assert qos["/camera/image_raw"] == [q for q in qos["/camera/image_raw"]] and \
        qos["/camera/image_raw"][0].reliability.name == "BEST_EFFORT"
    # deterministic: the same input and options give the same bytes; --no-copy: outputs only
    again = tmp_path / "again"
    assert run_bag(sample, "-o", again, *margs, *DEPTH, "--no-copy") == 0
    assert (diff := first_difference(read_rosbags(again), outputs(written))) is None, diff


def test_sqlite3_without_definitions_and_compressed_images(tmp_path, margs):
    src = write_sample_bag(tmp_path / "old", frames=3, size=48, compressed=True,
                           storage="sqlite3", depth=False)
    out = tmp_path / "out"
    assert run_bag(src, "-o", out, *margs, "--distro", "humble") == 0
    written = read_rosbags(out)
    assert sum(r[0] == "/ovseg/labels" for r in written) == 3
    via_mcap, _ = read_mcap(out)  # the copied topics got the humble typestore's definitions
    assert {r[0] for r in via_mcap} >= {"/camera/image_raw/compressed", "/chatter"}


def test_slices_absolute_and_relative(tmp_path, sample, margs):
    for name, args in (("rel", ["--start", "0.1", "--end", "0.25"]),
                       ("abs", ["--start", "1700000000.1", "--end", "1700000000.25"])):
        out = tmp_path / name
        assert run_bag(sample, "-o", out, *margs, *DEPTH, *args) == 0
        times = [t for topic, _, t, _ in read_rosbags(out) if topic == "/ovseg/labels"]
        assert times == [1_700_000_000_100_000_000, 1_700_000_000_200_000_000]


def test_bad_inputs_are_one_line_errors(tmp_path, sample, margs, capsys):
    def error(*argv) -> str:
        rc = run_bag(*argv, *margs)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0 and err and "Traceback" not in "\n".join(err)
        return err[-1]

    assert "no such file" in error(tmp_path / "missing", "-o", tmp_path / "o1")
    (tmp_path / "notes.txt").write_text("hello")
    assert "is not a bag" in error(tmp_path / "notes.txt", "-o", tmp_path / "o2")
    line = error(sample, "-o", tmp_path / "o3", "--image-topic", "/nope")
    assert "/nope" in line and "/camera/image_raw" in line
    out = tmp_path / "exists"
    out.mkdir()
    assert "--overwrite" in error(sample, "-o", out)
    assert run_bag(sample, "-o", out, *margs, "--overwrite", "--image-topic",
                   "/camera/image_raw") == 0


def test_truncated_mcap_and_undecodable_frames_are_reported(tmp_path, margs, capsys):
    src = write_sample_bag(tmp_path / "in", frames=8, size=48, compressed=True, depth=False)
    # an undecodable frame: rewrite the bag with one image's JPEG bytes broken
    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import CompressedImage

    broken = tmp_path / "broken"
    with Writer(broken, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        from rosbags.highlevel import AnyReader

        with AnyReader([src]) as r:
            conns = {c.id: w.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data,
                                            rihs01=c.digest) for c in r.connections}
            for c, t, raw in r.messages():
                if c.msgtype.endswith("CompressedImage") and t % 300_000_000 == 0:
                    msg = deserialize_message(raw, CompressedImage)
                    msg.data = b"\xff\xd8 not a jpeg"
                    raw = serialize_message(msg)
                w.write(conns[c.id], t, raw)
    out = tmp_path / "out"
    assert run_bag(broken, "-o", out, *margs) == 0
    text = capsys.readouterr().out
    assert "5 frames" in text and "skipped 3: undecodable frame" in text
    # a truncated MCAP file (no summary, a cut chunk): what is readable is processed
    src = write_sample_bag(tmp_path / "big", frames=12, size=320, depth=False)  # 3 chunks
    cut = tmp_path / "cut.mcap"
    data = next(src.glob("*.mcap")).read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    out2 = tmp_path / "out2"
    rc = run_bag(cut, "-o", out2, *margs)
    captured = capsys.readouterr()
    assert rc == 0 and "Traceback" not in captured.err
    assert "stopped early in cut.mcap near byte" in captured.out
    n = sum(r[0] == "/ovseg/labels" for r in read_rosbags(out2))
    assert 0 < n < 12


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_output(tmp_path, margs):
    src = write_sample_bag(tmp_path / "in", frames=40, size=320, depth=False)
    full = tmp_path / "full"
    assert run_bag(src, "-o", full, *margs) == 0
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen([sys.executable, "-m", "ovseg_ros.cli.main", "bag", str(src),
                              "-o", str(out), *margs], env=env, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True)
    try:
        for line in child.stderr:  # one line per 10%: kill it past half-way
            if "60%" in line:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert not out.exists() and (tmp_path / "out.partial").is_dir()
    assert run_bag(src, "-o", out, *margs, "--resume") == 0
    assert not (tmp_path / "out.partial").exists()
    assert (diff := first_difference(read_rosbags(out), read_rosbags(full))) is None, diff


@pytest.mark.slow
def test_ctrl_c_closes_a_readable_partial(tmp_path, margs):
    # Interrupted at the first progress line, 10%: the 90% left outlast a parent descheduled
    # by a busy machine (interrupted at 30% of 40 frames, the child once finished first).
    src = write_sample_bag(tmp_path / "in", frames=60, size=96, depth=False)
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-m", "ovseg_ros.cli.main", "bag", str(src),
                              "-o", str(out), *margs], stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        for line in child.stderr:
            if "10%" in line:
                break
        child.send_signal(signal.SIGINT)
        rest = child.stderr.read()
        assert child.wait(timeout=60) == 130
    finally:
        child.kill()
    assert "interrupted after" in rest and "--resume" in rest
    partial = read_rosbags(tmp_path / "out.partial")  # closed cleanly: metadata, summary
    assert 0 < sum(r[0] == "/ovseg/labels" for r in partial) < 60


def test_many_bags_shard_and_folder(tmp_path, margs, capsys):
    folder = tmp_path / "fleet"
    for i in range(3):
        write_sample_bag(folder / f"run{i}", frames=2, size=48, depth=False)
    out = tmp_path / "out"
    assert run_bag(folder, "-o", out, "--shard", "1/2", *margs) == 0  # every 2nd from #1
    assert sorted(p.name for p in out.iterdir()) == ["ovseg_summary.json", "run1"]
    assert run_bag(folder, "-o", out, *margs) == 1  # run1 exists now: that one fails alone
    text = capsys.readouterr().out
    assert "2/3 bags done" in text and "--overwrite" in text
    assert sorted(p.name for p in out.iterdir()) == ["ovseg_summary.json", "run0", "run1", "run2"]


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_partial(tmp_path, margs):
    """The file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes writes fail as a full disk
    does: an OSError from the writer, in a child process."""
    import resource

    src = write_sample_bag(tmp_path / "in", frames=12, size=320, depth=False)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    out = tmp_path / "out"
    child = subprocess.run([sys.executable, "-m", "ovseg_ros.cli.main", "bag", str(src), "-o",
                            str(out), *margs], preexec_fn=limit, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 2 and "Traceback" not in child.stderr
    assert child.stderr.strip().splitlines()[-1] == (
        f"ovseg: error: writing the output failed ([Errno 27] File too large); what was "
        f"written is kept in {out}.partial")
    assert (tmp_path / "out.partial").is_dir() and not out.exists()


def test_features_for_mappers(tmp_path, sample, margs):
    """--features: one FeatureMap per frame on `features`, with the frame's header, the grid
    the message describes and L2-normalised float16 vectors (the node's ~/features)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from ovseg_ros.msg import FeatureMap

    out = tmp_path / "feat"
    assert run_bag(sample, "-o", out, *margs, "--features", "--no-copy") == 0
    written = read_rosbags(out)
    feats = [deserialize_message(r[3], FeatureMap) for r in written if r[0] == "/ovseg/features"]
    labels = [deserialize_message(r[3], Image) for r in written if r[0] == "/ovseg/labels"]
    assert len(feats) == len(labels) == 4
    for f, lab in zip(feats, labels, strict=True):
        assert f.header == lab.header and f.encoding == "float16" and f.dim > 0
        assert (f.image_height, f.image_width) == (lab.height, lab.width)
        grid = np.frombuffer(bytes(f.data), "<f2").reshape(f.height, f.width, f.dim)
        np.testing.assert_allclose(np.linalg.norm(grid.astype(np.float32), axis=-1), 1.0,
                                   atol=2e-3)
    via_mcap, _ = read_mcap(out)  # FeatureMap's definition is embedded too
    assert sum(r[0] == "/ovseg/features" for r in via_mcap) == 4
    assert run_bag(sample, "-o", tmp_path / "slide", *margs, "--features", "--mode",
                   "slide") == 2
