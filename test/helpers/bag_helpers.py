"""Shared by the `ovseg bag` tests: the tiny model's options, running the CLI in-process, and
reading a bag back with both readers (rosbags, and Foxglove's `mcap`)."""

from __future__ import annotations

from pathlib import Path

from helpers.tiny_models import tiny_files


def model_args(folder: Path) -> list[str]:
    name, clip, heads = tiny_files(folder)
    return ["--model", name, "--clip-weights", str(clip), "--heads", str(heads),
            "--device", "cpu", "--precision", "fp32", "--backend", "torch", "--input-size", "0",
            "--prompts", "cat,dog,car"]


DEPTH = ["--depth-topic", "/camera/depth/image_raw", "--camera-info-topic", "/camera/camera_info"]


def run_bag(*argv: str) -> int:
    from ovseg_ros.cli.main import main

    return main(["bag", *map(str, argv)])


def read_rosbags(path: Path) -> list[tuple[str, str, int, bytes]]:
    """(topic, msgtype, bag time, raw) of every message, through rosbags, in bag order."""
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


def read_mcap(path: Path) -> tuple[list[tuple[str, str, int, bytes]], set[str]]:
    """(messages, chunk compressions) through `mcap`, decoding every message with the schema
    embedded in the file (mcap_ros2), so a missing or wrong definition fails here."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out, compressions = [], set()
    for file in sorted(path.glob("*.mcap")):
        with file.open("rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            summary = reader.get_summary()
            compressions |= {c.compression for c in summary.chunk_indexes}
            for schema, channel, message, decoded in reader.iter_decoded_messages(
                    log_time_order=True):
                assert decoded is not None
                out.append((channel.topic, schema.name, message.log_time, bytes(message.data)))
    return out, compressions


def _field_difference(a, b, path: str = "") -> str | None:
    """The first field where two deserialized messages differ, briefly (numpy arrays: the
    element count that differs and the largest difference, read per the image encoding)."""
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{path}: shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        if np.array_equal(a, b):
            return None
        first = int(np.flatnonzero(a.reshape(-1) != b.reshape(-1))[0])
        return (f"{path}: {int((a != b).sum())} of {a.size} elements differ, the first at "
                f"index {first} ({a.reshape(-1)[first]!r} vs {b.reshape(-1)[first]!r})")
    if hasattr(a, "__dataclass_fields__"):
        encoding = getattr(a, "encoding", None)
        for name in a.__dataclass_fields__:
            found = _field_difference(getattr(a, name), getattr(b, name), f"{path}.{name}")
            if found is not None and name == "data" and encoding in ("32FC1", "16UC1",
                                                                      "mono16"):
                dtype = {"32FC1": "<f4", "16UC1": "<u2", "mono16": "<u2"}[encoding]
                x = np.frombuffer(a.data.tobytes(), dtype).astype(np.float64)
                y = np.frombuffer(b.data.tobytes(), dtype).astype(np.float64)
                if x.shape == y.shape:
                    found += f"; as {encoding}: largest difference {np.abs(x - y).max():.3g}"
            if found is not None:
                return found
        return None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (found := _field_difference(x, y, f"{path}[{i}]")) is not None:
                return found
        return None
    return None if a == b else f"{path}: {a!r:.80} vs {b!r:.80}"


def first_difference(got: list, want: list, distro: str = "kilted") -> str | None:
    """None when two message lists ((topic, msgtype, time, raw), in any order) are equal;
    else one short line: which message (topic, bag time), which field or byte offset, the
    largest numeric difference. Never the messages' whole content."""
    from ovseg_ros.frame.builder import builder_for

    got, want = sorted(got), sorted(want)
    if len(got) != len(want):
        keys_got = {(r[0], r[2]) for r in got}
        keys_want = {(r[0], r[2]) for r in want}
        extra, missing = sorted(keys_got - keys_want)[:3], sorted(keys_want - keys_got)[:3]
        return (f"{len(got)} messages vs {len(want)} expected; extra (topic, time) {extra}, "
                f"missing {missing}")
    for (topic, msgtype, t, raw), (topic2, msgtype2, t2, raw2) in zip(got, want, strict=True):
        if (topic, msgtype, t) != (topic2, msgtype2, t2):
            return (f"message ({topic}, {msgtype}, {t}) where ({topic2}, {msgtype2}, {t2}) "
                    "was expected")
        if raw == raw2:
            continue
        offset = next((i for i, (x, y) in enumerate(zip(raw, raw2, strict=False)) if x != y),
                      min(len(raw), len(raw2)))
        where = f"{topic} ({msgtype}) at bag time {t}: first differing byte at offset {offset}"
        try:
            read = builder_for(distro).deserialize
            field = _field_difference(read(raw, msgtype), read(raw2, msgtype))
        except Exception as exc:  # an undecodable message still gets its byte offset
            field = f"(not deserializable: {type(exc).__name__})"
        return f"{where}; {field}"
    return None
