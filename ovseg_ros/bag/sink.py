"""The output bag: rosbag2 folder, MCAP storage, zstd chunk compression (storage level, so
`ros2 bag play` opens it), written into `OUTPUT.partial/` and renamed to OUTPUT when complete.

A crash or Ctrl-C leaves only the `.partial` folder; `ovseg bag --resume` reads what it holds
(a SIGKILLed writer leaves an MCAP without its summary: read up to where it breaks) and starts
a new partial with it.
"""

from __future__ import annotations

import errno
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import WriterError
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

from ovseg_ros.bag import BagError
from ovseg_ros.bag.metadata import DistroWriter
from ovseg_ros.frame.outputs import QosSpec
from ovseg_ros.frame.types import definition


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def qos_of(spec: QosSpec) -> Qos:
    """rosbags' QoS record of what a publisher offers (frame.outputs)."""
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, spec.depth,
               QosReliability.RELIABLE if spec.reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if spec.transient_local
               else QosDurability.VOLATILE,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


@dataclass(frozen=True)
class Topic:
    """One connection to write: its definition travels with it."""

    topic: str
    msgtype: str
    msgdef: str
    rihs01: str
    qos: tuple[Qos, ...] = ()


class OutputBag:
    """Writes into `OUTPUT.partial/`; `finish()` renames it to OUTPUT. Use as a context manager
    (an exception closes the partial bag cleanly and keeps it)."""

    def __init__(self, output: Path, distro: str) -> None:
        self.output, self.partial, self.distro = output, partial_path(output), distro
        self.writer = DistroWriter(self.partial, output.name, distro)  # metadata.py
        self.writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        try:
            self.writer.open()
        except (WriterError, FileExistsError) as exc:
            raise BagError(f"cannot write {self.partial}: {exc}") from None
        self.connections: dict[tuple[str, str], object] = {}
        self.written = 0
        self.closed = False

    def topic(self, topic: Topic):
        key = (topic.topic, topic.msgtype)
        conn = self.connections.get(key)
        if conn is None:
            conn = self.writer.add_connection(topic.topic, topic.msgtype, msgdef=topic.msgdef,
                                              rihs01=topic.rihs01,
                                              offered_qos_profiles=list(topic.qos))
            self.connections[key] = conn
        return conn

    def output_topic(self, name: str, msgtype: str, qos: QosSpec) -> Topic:
        """A Topic for one of the node's outputs (its definition from the typestore)."""
        found = definition(self.distro, msgtype)
        if found is None:  # only if a type is missing from the typestore: a bug, say so
            raise BagError(f"no message definition for {msgtype}")
        return Topic(name, msgtype, found[0], found[1], (qos_of(qos),))

    def write_raw(self, topic: Topic, time_ns: int, data: bytes | memoryview) -> None:
        try:
            self.writer.write(self.topic(topic), int(time_ns), data)
        except OSError as exc:
            raise _disk_error(exc, self.partial) from None
        self.written += 1

    def close(self) -> None:
        """Close the partial bag (readable, with its metadata.yaml)."""
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            except OSError as exc:
                raise _disk_error(exc, self.partial) from None

    def finish(self, overwrite: bool) -> None:
        """Close and rename OUTPUT.partial -> OUTPUT."""
        self.close()
        if self.output.exists():
            if not overwrite:
                raise BagError(f"{self.output} appeared while writing; result kept in "
                               f"{self.partial}")
            shutil.rmtree(self.output)
        self.partial.rename(self.output)

    def __enter__(self) -> OutputBag:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        except BagError:
            if exc[0] is None:
                raise


def _disk_error(exc: OSError, partial: Path) -> BagError:
    what = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else str(exc)
    return BagError(f"writing the output failed ({what}); what was written is kept in {partial}")


def prepare_output(output: Path, overwrite: bool, resume: bool,
                   fresh_partial: bool = False) -> Path | None:
    """Check OUTPUT before any work. Returns the partial folder to resume from (renamed to
    `OUTPUT.partial.resume/`), or None for a fresh start (`fresh_partial`: a stale partial
    is removed, as for a retry)."""
    partial = partial_path(output)
    if output.exists() and not overwrite:
        raise BagError(f"{output} exists: pass --overwrite to replace it")
    if resume:
        old = partial.with_name(partial.name + ".resume")
        if partial.exists():
            if old.exists():
                shutil.rmtree(old)
            partial.rename(old)
        if old.exists():
            return old
        raise BagError(f"--resume: no {partial} to resume from")
    if partial.exists():
        if not (overwrite or fresh_partial):
            raise BagError(f"{partial} exists (an interrupted run): pass --resume to continue "
                           "it or --overwrite to start again")
        shutil.rmtree(partial)
    return None


def read_partial(folder: Path) -> Iterator[tuple[str, int, bytes]]:
    """(topic, log time ns, raw CDR) of every message readable in a partial bag's MCAP files,
    stopping quietly where a killed writer left one truncated (no summary, a cut chunk)."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message
    from mcap.stream_reader import StreamReader

    for path in sorted(folder.glob("*.mcap")):
        channels: dict[int, str] = {}
        with path.open("rb") as f:
            try:
                for rec in StreamReader(f, skip_magic=False, emit_chunks=False).records:
                    if isinstance(rec, Channel):
                        channels[rec.id] = rec.topic
                    elif isinstance(rec, Message) and rec.channel_id in channels:
                        yield channels[rec.channel_id], rec.log_time, rec.data
            except (McapError, EOFError, ValueError, OSError, struct.error):
                continue  # truncated: everything before the break was yielded
