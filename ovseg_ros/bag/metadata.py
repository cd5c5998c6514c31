"""The rosbag2 metadata of an output bag, in the version the chosen distro's rosbag2 reads, and
its MCAP file named as the finished bag is.

rosbags writes metadata versions 8 and 9 only. What each release decodes (rosbag2's
rosbag2_storage/yaml.hpp and bag_metadata.hpp on its branch):

- Humble writes version 5 and reads `offered_qos_profiles` as a YAML *string* for every
  version >= 4 (a version 9 list fails its yaml-cpp conversion); its player parses that string
  as a list of profiles with integer policies (rosbag2_transport/qos.cpp).
- Iron writes version 7: as Humble, plus `type_description_hash` (a string) per topic and
  `custom_data` (a map of strings).
- Jazzy and Kilted write version 9: `offered_qos_profiles` a YAML list with named policies, and
  `ros_distro`; they read every older version too.

So Humble and Iron get rosbags' version 8 text (the string of integer policies, in
metadata.yaml and in every MCAP channel's `offered_qos_profiles`) converted down to 5 or 7;
Jazzy and Kilted rosbags' version 9 as it is. The MCAP's own `rosbag2` metadata record (read by
Jazzy and later) carries the same fields as metadata.yaml.

The MCAP file gets its final name, `OUTPUT.mcap`, when it is created inside `OUTPUT.partial/`
(rosbags names it after the folder): metadata.yaml and the MCAP's record name the file that the
finished bag holds, and the partial folder is a consistent bag at every moment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter

# The metadata version each distro's rosbag2 writes (and reads, with all older ones).
METADATA_VERSION = {"humble": 5, "iron": 7, "jazzy": 9, "kilted": 9}
TOP = "rosbag2_bagfile_information"


def writer_version(distro: str) -> int:
    """What rosbags writes before any conversion: 8 (QoS as a string of integer policies, the
    form Humble and Iron read) below version 9, else 9."""
    return 8 if METADATA_VERSION[distro] < 9 else 9


def for_distro(info: dict[str, Any], distro: str) -> dict[str, Any]:
    """rosbags' bag information (the mapping under rosbag2_bagfile_information, version 8
    or 9) as the distro's rosbag2 encodes it: its version and its fields only."""
    version = METADATA_VERSION[distro]
    if info.get("version") == version:
        return info
    out = {k: v for k, v in info.items() if k not in ("custom_data", "ros_distro")}
    out["version"] = version
    if version >= 6:
        out["custom_data"] = dict(info.get("custom_data") or {})
    out["topics_with_message_count"] = [
        {**topic, "topic_metadata": {
            k: v for k, v in topic["topic_metadata"].items()
            if version >= 7 or k != "type_description_hash"}}
        for topic in info["topics_with_message_count"]]
    return out


def dump(info: dict[str, Any]) -> str:
    """YAML text of bag information; multi-line strings (the QoS profiles) as literal blocks."""
    return yaml.dump(info, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 16)


class _Dumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


class _DistroMcap(McapWriter):
    """rosbags' MCAP storage whose `rosbag2` metadata record holds the distro's fields."""

    distro = "kilted"  # set by DistroWriter.open

    def close(self, version: int, metadata: str) -> None:
        if METADATA_VERSION[self.distro] != writer_version(self.distro):
            metadata = dump(for_distro(yaml.safe_load(metadata), self.distro)).strip()
        super().close(version, metadata)


class DistroWriter(Writer):
    """rosbags' rosbag2 writer (MCAP) for one distro, whose single MCAP file is named
    `<stem>.mcap` from the start (`stem`: the finished bag's folder name)."""

    STORAGE_PLUGINS = {StoragePlugin.MCAP: _DistroMcap}

    def __init__(self, folder: Path, stem: str, distro: str) -> None:
        super().__init__(folder, version=writer_version(distro), storage_plugin=StoragePlugin.MCAP)
        self.stem, self.distro = stem, distro

    def open(self) -> None:
        super().open()
        storage = self.storage
        assert isinstance(storage, _DistroMcap)
        storage.distro = self.distro
        final = storage.path.with_name(f"{self.stem}.mcap")
        if final != storage.path:  # only the 8-byte magic and header are written yet
            storage.path.rename(final)  # the open file follows its new name
            storage.path = final

    def close(self) -> None:
        super().close()
        if METADATA_VERSION[self.distro] != self.version:
            doc = yaml.safe_load(self.metapath.read_text(encoding="utf-8"))
            tmp = self.metapath.with_name(self.metapath.name + ".tmp")
            tmp.write_text(dump({TOP: for_distro(doc[TOP], self.distro)}), encoding="utf-8")
            tmp.replace(self.metapath)
