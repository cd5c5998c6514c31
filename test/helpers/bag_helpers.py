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
