"""`ovseg bag --distro X` writes the rosbag2 metadata that X's rosbag2 decodes (rules written
from rosbag2's yaml.hpp of each branch: helpers/rosbag2_rules.py), and neither metadata.yaml
nor the MCAP's own `rosbag2` record names the `.partial` file it was written as."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers.bag_helpers import model_args, read_rosbags, run_bag
from helpers.rosbag2_rules import (
    Rosbag2Rejects,
    check_bag_information,
    check_metadata_file,
    check_qos_text,
)

pytest.importorskip("rclpy")
from ovseg_ros.bag.metadata import METADATA_VERSION  # noqa: E402
from ovseg_ros.bag.sample import write_sample_bag  # noqa: E402
from ovseg_ros.frame.types import DISTROS  # noqa: E402

EXPECTED_VERSION = {"humble": 5, "iron": 7, "jazzy": 9, "kilted": 9}


@pytest.fixture(scope="module")
def margs(tmp_path_factory) -> list[str]:
    return model_args(tmp_path_factory.mktemp("bag_model"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_sample_bag(tmp_path_factory.mktemp("bags") / "in", frames=2, size=48)


def mcap_records(path: Path) -> tuple[list[tuple[str, dict]], list[dict]]:
    """(every metadata record's name and content, every channel's metadata) through `mcap`."""
    from mcap.reader import make_reader

    with path.open("rb") as f:
        reader = make_reader(f)
        records = [(m.name, dict(m.metadata)) for m in reader.iter_metadata()]
        channels = [dict(c.metadata) for c in reader.get_summary().channels.values()]
    return records, channels


def check_bag(folder: Path, distro: str) -> dict:
    """Everything the distro's rosbag2 reads from the bag folder; the metadata.yaml info."""
    info = check_metadata_file((folder / "metadata.yaml").read_text(), distro)
    files = info["relative_file_paths"]
    assert files == [f"{folder.name.removesuffix('.partial')}.mcap"]
    assert [f["path"] for f in info.get("files", [])] in ([], files)
    assert (folder / files[0]).is_file()
    records, channels = mcap_records(folder / files[0])
    rosbag2 = [content for name, content in records if name == "rosbag2"]
    assert len(rosbag2) == 1
    for name, content in records:
        for key, value in content.items():
            assert ".partial" not in value, (name, key)
    inner = yaml.safe_load(rosbag2[0]["serialized_metadata"])
    assert check_bag_information(inner, distro, "mcap record") == info["version"]
    assert inner["relative_file_paths"] == files
    for k, meta in enumerate(channels):
        check_qos_text(meta["offered_qos_profiles"], f"channel {k}", distro)
    return info


@pytest.mark.parametrize("distro", DISTROS)
def test_each_distro_gets_the_metadata_its_rosbag2_decodes(tmp_path, sample, margs, distro):
    out = tmp_path / "out"
    assert run_bag(sample, "-o", out, *margs, "--distro", distro) == 0
    info = check_bag(out, distro)
    assert info["version"] == EXPECTED_VERSION[distro] == METADATA_VERSION[distro]
    qos = [t["topic_metadata"]["offered_qos_profiles"] for t in info["topics_with_message_count"]]
    assert all(isinstance(q, str if distro in ("humble", "iron") else list) for q in qos)
    assert any(q for q in qos)  # the outputs' profiles are there, not empty strings
    counts = {t["topic_metadata"]["name"]: t["message_count"]
              for t in info["topics_with_message_count"]}
    written = read_rosbags(out)  # rosbags reads every version back
    assert sum(counts.values()) == info["message_count"] == len(written)
    assert counts["/ovseg/labels"] == 2


def test_the_rules_refuse_what_humble_cannot_read(tmp_path):
    """Version 9 (a QoS list) as Humble's and Iron's yaml-cpp read it: refused; so the test
    above can fail. The same bag is fine for Jazzy."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
    from rosbags.interfaces import QosTime as T
    from rosbags.rosbag2 import StoragePlugin, Writer

    from ovseg_ros.frame.types import typestore

    qos = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.VOLATILE,
              T(0, 0), T(0, 0), QosLiveliness.AUTOMATIC, T(0, 0), False)
    with Writer(tmp_path / "v9", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection("/chatter", "std_msgs/msg/String", typestore=typestore("jazzy"),
                              offered_qos_profiles=[qos])
    text = (tmp_path / "v9" / "metadata.yaml").read_text()
    check_metadata_file(text, "jazzy")
    for distro in ("humble", "iron"):
        with pytest.raises(Rosbag2Rejects, match="version 9"):
            check_metadata_file(text, distro)
    info = yaml.safe_load(text)["rosbag2_bagfile_information"]
    info["version"] = 5  # even under Humble's own version the list is no string
    with pytest.raises(Rosbag2Rejects, match="offered_qos_profiles: as<std::string> of list"):
        check_bag_information(info, "humble")


@pytest.mark.parametrize("distro", ["humble", "kilted"])
def test_a_closed_partial_bag_names_its_file(tmp_path, distro):
    """Interrupted (closed, not finished): OUTPUT.partial/ holds OUTPUT.mcap and says so; after
    finish() the folder is renamed and nothing inside changes."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
    from rosbags.interfaces import QosTime as T

    from ovseg_ros.bag.sink import OutputBag, Topic
    from ovseg_ros.frame.types import definition, typestore

    store, msgtype = typestore(distro), "std_msgs/msg/String"
    latched = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                  T(0, 0), T(0, 0), QosLiveliness.AUTOMATIC, T(0, 0), False)
    out = tmp_path / "labelled"
    bag = OutputBag(out, distro)
    topic = Topic("/note", msgtype, *definition(distro, msgtype), (latched,))
    bag.write_raw(topic, 1_000, bytes(store.serialize_cdr(store.types[msgtype](data="hi"),
                                                          msgtype)))
    bag.close()
    partial = tmp_path / "labelled.partial"
    assert sorted(p.name for p in partial.iterdir()) == ["labelled.mcap", "metadata.yaml"]
    check_bag(partial, distro)
    before = {p.name: p.read_bytes() for p in partial.iterdir()}
    bag.finish(overwrite=False)
    assert not partial.exists()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    check_bag(out, distro)
