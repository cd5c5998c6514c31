"""Opening an input bag: a rosbag2 folder (MCAP or sqlite3), a single `.mcap` file, or a ROS 1
`.bag` (rosbags converts its messages to CDR). Raw messages in bag-time order, with the
connection each came on; a truncated or corrupt file yields what is readable and records
where it broke (`InputBag.broken`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection

from ovseg_ros.bag import BagError
from ovseg_ros.bag.sink import Topic
from ovseg_ros.frame.types import definition

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml, or .mcap/.db3 files), an .mcap file or a ROS 1 .bag."""
    if path.is_dir():
        return (path / "metadata.yaml").is_file() or any(path.glob("*.mcap")) \
            or any(path.glob("*.db3"))
    return path.is_file() and path.suffix in (".mcap", ".bag")


class InputBag:
    """An open input bag. `connections`: every topic it has; `messages()`: (connection, bag
    time ns, raw CDR bytes) in bag-time order."""

    def __init__(self, path: Path, distro: str) -> None:
        if not path.exists():
            raise BagError(f"{path}: no such file or folder")
        if not is_bag(path):
            raise BagError(f"{path} is not a bag (a rosbag2 folder with metadata.yaml, an .mcap "
                           "file or a ROS 1 .bag)")
        self.path, self.distro = path, distro
        self.broken = ""  # where reading stopped early, and why
        from ovseg_ros.frame.types import typestore

        try:
            self.reader = AnyReader([path], default_typestore=typestore(distro))
            self.reader.open()
        except Exception as exc:  # rosbags raises many kinds for one broken file
            mcaps = sorted(path.glob("*.mcap")) if path.is_dir() else (
                [path] if path.suffix == ".mcap" else [])
            if not mcaps:
                raise BagError(f"{path}: cannot read this bag ({_one_line(exc)})") from None
            # No summary (a recorder killed mid-write, a cut copy): read it as a stream.
            self.reader = McapStream(mcaps)
            if not self.reader.connections:
                raise BagError(f"{path}: cannot read this bag ({_one_line(exc)}; "
                               f"{self.reader.broken or 'no messages'})") from None
            self.broken = self.reader.broken
        self.ros1 = getattr(self.reader, "is2", True) is False
        self.connections: list[Connection] = list(self.reader.connections)

    @property
    def start_ns(self) -> int:
        return int(self.reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self.reader.end_time)

    def topics(self, types: tuple[str, ...] | None = None) -> dict[str, str]:
        """{topic: msgtype}, optionally only those of `types`."""
        return {c.topic: c.msgtype for c in self.connections
                if types is None or c.msgtype in types}

    def count(self, topics: set[str]) -> int:
        return sum(c.msgcount for c in self.connections if c.topic in topics)

    def copy_topic(self, conn: Connection) -> Topic:
        """The output connection that copies `conn` through: its own definition and QoS, or
        the distro typestore's definition when the bag carries none (Humble-era sqlite3)."""
        msgdef, rihs01 = conn.msgdef.data if conn.msgdef else "", conn.digest or ""
        if not msgdef or not rihs01.startswith("RIHS01_"):
            found = definition(self.distro, conn.msgtype)
            if found is not None:
                msgdef = msgdef or found[0]
                rihs01 = found[1] if not rihs01.startswith("RIHS01_") else rihs01
        qos = tuple(getattr(conn.ext, "offered_qos_profiles", ()) or ())
        # Unknown type without a definition: copied raw all the same (msgdef stays empty).
        return Topic(conn.topic, conn.msgtype, msgdef, rihs01 or "RIHS01_" + "0" * 64, qos)

    def messages(self, start_ns: int | None = None, stop_ns: int | None = None
                 ) -> Iterator[tuple[Connection, int, bytes]]:
        gen = self.reader.messages(start=start_ns, stop=stop_ns)
        while True:
            try:
                conn, t, raw = next(gen)
            except StopIteration:
                if isinstance(self.reader, McapStream):
                    self.broken = self.reader.broken
                return
            except Exception as exc:  # a truncated chunk, a corrupt record: keep what we had
                self.broken = f"reading stopped early: {_one_line(exc)}"
                return
            if isinstance(self.reader, McapStream):
                self.broken = self.reader.broken
            if self.ros1:  # ROS 1 serialization -> CDR, with the definitions the bag has
                raw = self.reader.typestore.ros1_to_cdr(raw, conn.msgtype)
            yield conn, t, raw

    def close(self) -> None:
        self.reader.close()


class McapStream:
    """Reads MCAP files record by record (no summary needed), up to where they break: the
    reader for truncated files. Same interface as the part of AnyReader used here."""

    def __init__(self, files: list[Path]) -> None:
        self.files, self.broken = files, ""
        self.connections: list[Connection] = []
        self._by_channel: dict[tuple[int, int], Connection] = {}
        self.start_time, self.end_time = 2**63 - 1, 0
        counts: dict[tuple[int, int], int] = {}
        for _, key, t, _ in self._records(scan=True):
            counts[key] = counts.get(key, 0) + 1
            self.start_time, self.end_time = min(self.start_time, t), max(self.end_time, t)
        self.connections = [c._replace(msgcount=counts.get(k, 0))
                            for k, c in self._by_channel.items()]
        self._by_channel = {k: c for k, c in zip(self._by_channel, self.connections,
                                                  strict=True)}

    def _records(self, scan: bool):
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader
        from rosbags.interfaces import (
            ConnectionExtRosbag2,
            MessageDefinition,
            MessageDefinitionFormat,
        )
        from rosbags.rosbag2.storage_mcap import parse_qos

        for i, path in enumerate(self.files):
            schemas: dict[int, Schema] = {}
            with path.open("rb") as f:
                try:
                    for rec in StreamReader(f, skip_magic=False, emit_chunks=False).records:
                        if isinstance(rec, Schema):
                            schemas[rec.id] = rec
                        elif isinstance(rec, Channel) and scan:
                            sc = schemas.get(rec.schema_id)
                            try:
                                qos = parse_qos(rec.metadata.get("offered_qos_profiles", ""))
                            except Exception:
                                qos = []
                            self._by_channel[(i, rec.id)] = Connection(
                                len(self._by_channel) + 1, rec.topic, sc.name if sc else "",
                                MessageDefinition(MessageDefinitionFormat.MSG,
                                                  sc.data.decode() if sc else ""),
                                "", 0, ConnectionExtRosbag2("cdr", qos), None)
                        elif isinstance(rec, Message) and (i, rec.channel_id) in \
                                self._by_channel:
                            yield rec, (i, rec.channel_id), rec.log_time, rec.data
                except Exception as exc:  # the break: a cut record or chunk, a bad CRC
                    what = "truncated" if type(exc).__name__ == "EndOfFile" else _one_line(exc)
                    self.broken = (f"reading stopped early in {path.name} near byte {f.tell()} "
                                   f"of {path.stat().st_size}: {what}")

    def messages(self, start: int | None = None, stop: int | None = None):
        for _, key, t, data in self._records(scan=False):
            if (start is None or t >= start) and (stop is None or t < stop):
                yield self._by_channel[key], t, data

    def close(self) -> None:
        pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
