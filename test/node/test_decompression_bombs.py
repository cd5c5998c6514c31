"""Decompression bombs: refused from the compressed header, before any pixel is decoded.

The bombs are built here: a 36-byte lossless WebP of 16383 x 16383 pixels (a VP8L stream whose
five prefix codes have one symbol each, so a pixel costs 0 bits: 1.9 GB once decoded) and a
6000 x 6000 JPEG whose SOF comes after 70 KB of comment segments (an old check read the first
64 KiB only). Each is sent to the running node as a CompressedImage: the process's peak RSS
(VmHWM, reset through /proc/self/clear_refs, the node runs in this process) stays within 50 MB
of its baseline, the warning names the size, and the next good frame is served.
"""

from __future__ import annotations

import struct
import time

import cv2
import numpy as np
import pytest

from ovseg_ros.io import ImageDecodeError, decode_compressed, peek_compressed_size
from ovseg_ros.io.image_header import HeaderError, header_size
from ovseg_ros.io.media import MediaError, read_image

RSS_BUDGET_KB = 50 * 1024


def webp_bomb(w: int, h: int) -> bytes:
    """A valid lossless WebP of w x h black pixels in 36 bytes."""
    bits: list[int] = []

    def put(v: int, n: int) -> None:  # VP8L bit order: least significant bit first
        bits.extend((v >> k) & 1 for k in range(n))

    put(w - 1, 14), put(h - 1, 14), put(0, 1), put(0, 3)  # size, no alpha, version 0
    put(0, 3)  # no transform, no colour cache, no meta prefix codes
    for _ in range(5):  # green, red, blue, alpha, distance: simple code, one 1-bit symbol 0
        put(1, 1), put(0, 1), put(0, 1), put(0, 1)
    bits.extend([0] * (-len(bits) % 8))
    payload = bytes([0x2F]) + bytes(
        sum(b << k for k, b in enumerate(bits[i : i + 8])) for i in range(0, len(bits), 8))
    payload += bytes(16 - len(payload))
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def padded_jpeg(w: int, h: int, padding: int = 70_000) -> bytes:
    """A w x h grey JPEG with `padding` bytes of COM segments between SOI and the frame header."""
    ok, buf = cv2.imencode(".jpg", np.zeros((h, w), np.uint8))
    assert ok
    data, pad = buf.tobytes(), b""
    while len(pad) < padding:
        body = b"x" * min(60_000, padding - len(pad))
        pad += b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body
    return data[:2] + pad + data[2:]


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[bytes, str]]:
    """name -> (payload, the size the refusal must name)."""
    return {"webp": (webp_bomb(16383, 16383), "16383x16383"),
            "jpeg": (padded_jpeg(6000, 6000), "6000x6000")}


def peak_rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def reset_peak_rss() -> int:
    """Reset this process's peak RSS to its current RSS (Linux clear_refs 5); that value."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return peak_rss_kb()


def test_bombs_decode_for_real_at_a_small_size():
    """The constructions are real images: the same streams at a small size decode."""
    assert cv2.imdecode(np.frombuffer(webp_bomb(40, 30), np.uint8), 1).shape == (30, 40, 3)
    assert decode_compressed("jpeg", padded_jpeg(40, 30)).shape == (30, 40, 3)


def test_bombs_are_refused_from_the_header(bombs):
    for name, (data, size) in bombs.items():
        assert peek_compressed_size(data) == tuple(map(int, size.split("x"))), name
        base = reset_peak_rss()
        t0 = time.monotonic()
        with pytest.raises(ImageDecodeError, match=f"{size} = .* exceeds the limit"):
            decode_compressed("webp" if name == "webp" else "jpeg", data)
        grew = peak_rss_kb() - base
        print(f"{name}: {len(data)} bytes, refused in {time.monotonic() - t0:.4f} s, "
              f"peak RSS +{grew} kB")
        assert grew < RSS_BUDGET_KB, f"{name} bomb raised peak RSS by {grew} kB"


def test_media_files_are_checked_the_same_way(bombs, tmp_path):
    """`ovseg segment` / `ovseg bag` inputs go through the same header check."""
    for name, (data, size) in bombs.items():
        path = tmp_path / f"bomb.{name}"
        path.write_bytes(data)
        base = reset_peak_rss()
        with pytest.raises(MediaError, match=size):
            read_image(path)
        assert peak_rss_kb() - base < RSS_BUDGET_KB, name


def test_video_frame_size_is_checked_before_the_first_frame_is_decoded(tmp_path):
    from ovseg_ros.io.media import iter_frames

    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    vw.write(np.zeros((48, 64, 3), np.uint8))
    vw.release()
    with pytest.raises(MediaError, match="64x48 frames exceed"):
        iter_frames(path, max_pixels=64 * 48 - 1)  # raised at open, not mid-iteration


@pytest.mark.parametrize("data, reason", [
    (b"\x00\x00\x00\x1cftypavif" + bytes(64), "cannot be read before decoding"),
    (bytes(range(256)), "unknown image format"),
    (b"\xff\xd8\xff\xda\x00\x02" + bytes(32), "before any frame header"),
    (b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x10" + bytes(32), "DNL"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8X" + bytes(4), "truncated"),
    (b"\xff\xd8" + b"\xff\xd0" * 2_000_000, "more than 10000 segments"),  # a CPU bomb
])
def test_formats_and_headers_without_a_readable_size_are_refused(data, reason):
    with pytest.raises(HeaderError, match=reason):
        header_size(data)
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        decode_compressed("image", data)


# Every format this OpenCV can write (GIF since 4.11; CI's Jazzy venv has the oldest allowed).
WRITABLE = [e for e in (".jpg", ".png", ".webp", ".bmp", ".tif", ".jp2", ".ppm", ".pgm", ".pam",
                        ".ras", ".gif", ".hdr", ".pfm") if cv2.haveImageWriter(e)]


def test_the_common_formats_are_writable_here():
    assert {".jpg", ".png", ".webp", ".bmp", ".tif"} <= set(WRITABLE)


@pytest.mark.parametrize("ext", WRITABLE)
def test_every_format_opencv_writes_has_its_size_read_and_decodes(ext):
    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3)).astype(np.uint8)
    arr = img.astype(np.float32) / 255 if ext in (".hdr", ".pfm") else img
    ok, buf = cv2.imencode(ext, cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY) if ext == ".pgm" else arr)
    assert ok
    assert header_size(buf.tobytes())[1:] == (53, 37)
    assert decode_compressed(ext[1:], buf).shape == (37, 53, 3)
    with pytest.raises(ImageDecodeError, match="53x37"):
        decode_compressed(ext[1:], buf, max_pixels=53 * 37 - 1)


def test_bombs_on_the_node_cost_no_memory_and_the_next_frame_is_served(ros, autostart_node,
                                                                      bombs):
    from helpers.ros_helpers import make_picture, send_until, stamp, wait_for
    from sensor_msgs.msg import CompressedImage, Image

    from ovseg_ros.node import qos as Q

    node, ns = autostart_node(input_transport="compressed")
    labels = ros.collect(Image, f"{ns}/ovseg/labels")
    pub = ros.helper.create_publisher(CompressedImage, f"{ns}/image/compressed", Q.reliable(5))
    assert wait_for(lambda: node.count_publishers(node.input_topic) > 0)
    for k, (name, (data, size)) in enumerate(bombs.items()):
        msg = CompressedImage(format=name)
        msg.header.stamp = stamp(10 + k)
        msg.data = data
        base = reset_peak_rss()
        pub.publish(msg)
        assert wait_for(lambda k=k: node.health.rejected == k + 1, timeout=60.0), name
        grew = peak_rss_kb() - base
        print(f"node, {name} bomb: peak RSS +{grew} kB; {node.health._last_reject}")
        assert size in node.health._last_reject and "exceeds the limit" in \
            node.health._last_reject
        assert grew < RSS_BUDGET_KB, f"{name} bomb raised the node's peak RSS by {grew} kB"
    ok, jpg = cv2.imencode(".jpg", make_picture(32, 48))
    good = CompressedImage(format="jpeg")
    good.data = jpg.tobytes()
    good.header.stamp = stamp(99)
    assert send_until(pub, lambda: good, lambda: labels.count >= 1)
    assert labels.last().header.stamp.sec == 99 and node.health.failed == 0
