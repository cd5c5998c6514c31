"""ovseg_ros.io.image_codec: every encoding against OpenCV's own conversions, every rejection."""

from __future__ import annotations

import array
import tracemalloc

import cv2
import numpy as np
import pytest

from ovseg_ros.io import image_codec as ic
from ovseg_ros.io.image_codec import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    decode_compressed,
    decode_image,
    encode_float,
    encode_labels,
    encode_mono8,
    encode_rgb,
    peek_compressed_size,
)

H, W = 7, 10  # odd height, even width (YUV 4:2:2 needs an even width)
RNG = np.random.default_rng(1234)
BGR = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
U16 = RNG.integers(0, 65536, (H, W, 4), dtype=np.uint16)

# ROS Bayer pattern -> the OpenCV code, stated independently of the module under test: OpenCV
# names the legacy codes by the 2x2 block at row 1 / col 1 (ROS rggb = OpenCV "BG").
BAYER_CV = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an (H, W, 3) image into a Bayer mosaic whose top-left 2x2 block is `pattern`."""
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            ch = "rgb".index(pattern[2 * dy + dx])
            out[dy::2, dx::2] = rgb[dy::2, dx::2, ch]
    return out


def pack(arr: np.ndarray, pad: int, dtype: str | None = None) -> tuple[bytes, int]:
    """Rows of `arr` as bytes with `pad` junk bytes after each row; returns (data, step)."""
    if dtype is not None:
        arr = arr.astype(dtype)
    rows = np.ascontiguousarray(arr).reshape(arr.shape[0], -1).view(np.uint8)
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    return np.hstack([rows, junk]).tobytes(), rows.shape[1] + pad


def hi8(a: np.ndarray) -> np.ndarray:
    return (a >> 8).astype(np.uint8)


def packed_422(bgr: np.ndarray, order: str) -> np.ndarray:
    """(H, W, 2) UYVY or YUY2 bytes of `bgr` from OpenCV's YUV 4:4:4, chroma of even columns
    (OpenCV 4.6, the oldest requirements.txt allows, has no BGR -> packed 4:2:2 conversion)."""
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    y, u, v = yuv[..., 0], yuv[:, 0::2, 1].repeat(2, 1), yuv[:, 0::2, 2].repeat(2, 1)
    chroma = np.where(np.arange(bgr.shape[1]) % 2 == 0, u, v)
    pair = (chroma, y) if order == "uyvy" else (y, chroma)
    return np.ascontiguousarray(np.dstack(pair))


def cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """encoding -> (buffer image in native dtype, RGB expected from OpenCV)."""
    rgb = cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)
    gray = cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([rgb, RNG.integers(0, 256, (H, W), dtype=np.uint8)])
    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    uyvy, yuy2 = packed_422(BGR, "uyvy"), packed_422(BGR, "yuy2")
    g16 = U16[..., 0]
    c: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "rgb8": (rgb, rgb),
        "bgr8": (BGR, cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)),
        "8UC3": (BGR, cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)),
        "rgba8": (rgba, cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)),
        "bgra8": (bgra, cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)),
        "8UC4": (bgra, cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)),
        "mono8": (gray, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)),
        "8UC1": (gray, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)),
        "mono16": (g16, cv2.cvtColor(hi8(g16), cv2.COLOR_GRAY2RGB)),
        "16UC1": (g16, cv2.cvtColor(hi8(g16), cv2.COLOR_GRAY2RGB)),
        "rgb16": (U16[..., :3], hi8(U16[..., :3])),
        "bgr16": (U16[..., :3], cv2.cvtColor(hi8(U16[..., :3]), cv2.COLOR_BGR2RGB)),
        "rgba16": (U16, cv2.cvtColor(hi8(U16), cv2.COLOR_RGBA2RGB)),
        "bgra16": (U16, cv2.cvtColor(hi8(U16), cv2.COLOR_BGRA2RGB)),
        "yuv422": (uyvy, cv2.cvtColor(uyvy, cv2.COLOR_YUV2RGB_UYVY)),
        "uyvy": (uyvy, cv2.cvtColor(uyvy, cv2.COLOR_YUV2RGB_UYVY)),
        "yuyv": (yuy2, cv2.cvtColor(yuy2, cv2.COLOR_YUV2RGB_YUY2)),
        "yuv422_yuy2": (yuy2, cv2.cvtColor(yuy2, cv2.COLOR_YUV2RGB_YUY2)),
    }
    for pat, code in BAYER_CV.items():
        m8 = mosaic(rgb, pat)
        c[f"bayer_{pat}8"] = (m8, cv2.cvtColor(m8, code))
        m16 = mosaic(U16[..., :3], pat)
        c[f"bayer_{pat}16"] = (m16, hi8(cv2.cvtColor(m16, code)))
    f = RNG.uniform(-0.2, 1.2, (H, W)).astype(np.float32)
    g = np.floor(np.clip(f, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    c["32FC1"] = (f, cv2.cvtColor(g, cv2.COLOR_GRAY2RGB))
    return c


CASES = cases()


def test_cases_cover_every_supported_encoding():
    assert set(CASES) == set(SUPPORTED_ENCODINGS)


DECODE_PARAMS = [
    (enc, big, pad)
    for enc in SUPPORTED_ENCODINGS
    for big in (False, True)
    for pad in (0, 5)
    if CASES[enc][0].dtype.itemsize > 1 or not (big and pad)  # 8-bit: one big-endian run
]


@pytest.mark.parametrize("encoding,big,pad", DECODE_PARAMS)
def test_decode_matches_opencv(encoding, big, pad):
    src, expected = CASES[encoding]
    dtype = None
    if src.dtype.itemsize > 1:
        dtype = (">" if big else "<") + src.dtype.str[1:]
    data, step = pack(src, pad, dtype)
    out = decode_image(encoding, H, W, step, int(big), data)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: array.array("B", b),
        lambda b: np.frombuffer(b, np.uint8),
    ],
)
def test_accepts_every_buffer_type(wrap):
    data, step = pack(BGR, 3)
    out = decode_image("bgr8", H, W, step, 0, wrap(data))
    np.testing.assert_array_equal(out, CASES["bgr8"][1])


def test_rgb8_without_padding_is_zero_copy():
    buf = bytearray(CASES["rgb8"][0].tobytes())
    out = decode_image("rgb8", H, W, W * 3, 0, buf)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))
    padded, step = pack(CASES["rgb8"][0], 2)
    assert decode_image("rgb8", H, W, step, 0, padded).flags.c_contiguous


def test_encoding_names_are_case_insensitive():
    data, step = pack(BGR, 0)
    np.testing.assert_array_equal(decode_image(" BGR8 ", H, W, step, 0, data), CASES["bgr8"][1])


@pytest.mark.parametrize("pattern", sorted(BAYER_CV))
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_flat_colour_proves_pattern_mapping(pattern, bits):
    colour = np.array([200, 90, 30])  # all channels distinct: any wrong mapping changes it
    scale = 256 if bits == 16 else 1
    flat = np.broadcast_to(colour * scale, (8, 12, 3)).astype(f"u{bits // 8}")
    m = mosaic(flat, pattern)
    out = decode_image(f"bayer_{pattern}{bits}", 8, 12, m.strides[0], 0, m.astype(f"<u{bits // 8}"))
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to(colour, (4, 8, 3)))


@pytest.mark.parametrize("pattern", sorted(BAYER_CV))
def test_bayer_codes_agree_with_opencv_explicit_names(pattern):
    # OpenCV >= 4.10 also has codes named by the top-left block, as ROS names them.
    explicit = getattr(cv2, f"COLOR_Bayer{pattern.upper()}2RGB", None)
    if explicit is None:
        pytest.skip("this OpenCV has no top-left-named Bayer codes")
    assert ic._BAYER[pattern] == explicit == BAYER_CV[pattern]


@pytest.mark.parametrize("pattern", sorted(BAYER_CV))
def test_bayer_smooth_image_reconstructs(pattern):
    yy, xx = np.mgrid[0:32, 0:40]
    rgb = np.dstack([xx * 5 + 20, yy * 6 + 10, 230 - xx * 3 - yy * 2]).astype(np.uint8)
    m = mosaic(rgb, pattern)
    out = decode_image(f"bayer_{pattern}8", 32, 40, 40, 0, m.tobytes())
    err = np.abs(out[2:-2, 2:-2].astype(int) - rgb[2:-2, 2:-2]).mean()
    assert err < 2.0
    wrong = {"rggb": "bggr", "bggr": "rggb", "gbrg": "grbg", "grbg": "gbrg"}[pattern]
    bad = decode_image(f"bayer_{wrong}8", 32, 40, 40, 0, m.tobytes())
    assert np.abs(bad[2:-2, 2:-2].astype(int) - rgb[2:-2, 2:-2]).mean() > 10 * err + 5


@pytest.mark.parametrize("encoding", ["rgb8", "bgra8", "mono8", "mono16", "bayer_rggb8", "32FC1"])
def test_one_by_one_is_valid(encoding):
    bpp = ic._ENCODINGS[encoding].bpp
    out = decode_image(encoding, 1, 1, bpp, 0, bytes(bpp))
    assert out.shape == (1, 1, 3) and out.dtype == np.uint8


# ------------------------------------------------------------------ rejections


def test_unknown_encoding_is_named_with_the_supported_list():
    with pytest.raises(ImageDecodeError, match="'hsv8'") as e:
        decode_image("hsv8", 2, 2, 6, 0, bytes(12))
    assert "rgb8" in str(e.value) and "bayer_grbg16" in str(e.value)


@pytest.mark.parametrize("h,w", [(0, 0), (0, 4), (4, 0), (-1, 4)])
def test_empty_or_negative_size(h, w):
    with pytest.raises(ImageDecodeError, match="invalid size"):
        decode_image("rgb8", h, w, 12, 0, bytes(48))


def test_step_too_small():
    with pytest.raises(ImageDecodeError, match=r"step 29 .* at least width\*3 = 30"):
        decode_image("rgb8", H, W, 29, 0, bytes(29 * H))


def test_truncated_data():
    with pytest.raises(ImageDecodeError, match=r"truncated: 209 bytes, need height\*step"):
        decode_image("rgb8", H, W, 30, 0, bytes(30 * H - 1))


def test_above_max_pixels_is_rejected_before_allocation():
    tracemalloc.start()
    try:
        with pytest.raises(ImageDecodeError, match="max_pixels=16777216"):
            decode_image("rgb8", 100_000, 100_000, 300_000, 0, b"\x00" * 16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    with pytest.raises(ImageDecodeError, match="max_pixels=99"):
        decode_image("mono8", 10, 10, 10, 0, bytes(100), max_pixels=99)
    assert decode_image("mono8", 10, 10, 10, 0, bytes(100), max_pixels=100).shape == (10, 10, 3)


def test_yuv_odd_width_rejected():
    with pytest.raises(ImageDecodeError, match="even width"):
        decode_image("yuv422", 2, 3, 6, 0, bytes(12))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_rejected(bad):
    f = np.zeros((3, 4), np.float32)
    f[1, 2] = bad
    with pytest.raises(ImageDecodeError, match="1 of 12 pixels are NaN or Inf"):
        decode_image("32FC1", 3, 4, 16, 0, f.tobytes())


def test_non_buffer_data_rejected():
    with pytest.raises(ImageDecodeError, match="not a buffer"):
        decode_image("mono8", 1, 1, 1, 0, [0])


# ------------------------------------------------------------------ compressed


def _encoded(ext: str, img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def test_compressed_png_is_exact_and_jpeg_close():
    rgb = cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decode_compressed("png", _encoded(".png", BGR)), rgb)
    smooth = cv2.resize(BGR, (64, 48), interpolation=cv2.INTER_CUBIC)
    out = decode_compressed("rgb8; jpeg compressed bgr8", _encoded(".jpg", smooth))
    assert out.shape == (48, 64, 3)
    ref = cv2.cvtColor(smooth, cv2.COLOR_BGR2RGB).astype(int)
    assert np.abs(out.astype(int) - ref).mean() < 6


def test_compressed_grayscale_becomes_rgb():
    gray = CASES["mono8"][0]
    out = decode_compressed("png", _encoded(".png", gray))
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))


def test_peek_header_sizes():
    img = np.zeros((48, 64, 3), np.uint8)
    assert peek_compressed_size(_encoded(".png", img)) == (64, 48)
    assert peek_compressed_size(_encoded(".jpg", img)) == (64, 48)
    assert peek_compressed_size(b"not an image") is None


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_compressed_above_max_pixels(ext):
    data = _encoded(ext, np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ImageDecodeError, match="max_pixels=3071"):
        decode_compressed(ext[1:], data, max_pixels=3071)
    assert decode_compressed(ext[1:], data, max_pixels=3072).shape == (48, 64, 3)


@pytest.mark.parametrize(
    "data", [b"\xff\xd8\xff\xe0garbage-not-a-jpeg" * 4, bytes(range(256)), b"\x89PNG\r\n\x1a\n"]
)
def test_corrupt_compressed(data):
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        decode_compressed("jpeg", data)


def test_empty_compressed():
    with pytest.raises(ImageDecodeError, match="no data"):
        decode_compressed("jpeg", b"")


def test_compressed_depth_refused():
    with pytest.raises(ImageDecodeError, match="depth"):
        decode_compressed("16UC1; compressedDepth png", b"\x00" * 20)


# ------------------------------------------------------------------ encoders


def _decode(f: ic.ImageFields) -> np.ndarray:
    return decode_image(f.encoding, f.height, f.width, f.step, f.is_bigendian, f.data)


def test_encode_labels_mono8_roundtrip():
    labels = RNG.integers(0, 40, (H, W)).astype(np.uint16)
    f = encode_labels(labels)
    assert (f.encoding, f.height, f.width, f.step, f.is_bigendian) == ("mono8", H, W, W, 0)
    np.testing.assert_array_equal(_decode(f)[..., 0], labels)
    arr = f.as_array()
    assert isinstance(arr, array.array) and arr.typecode == "B" and len(arr) == H * W


def test_encode_labels_mono16_when_needed_or_forced():
    labels = np.zeros((H, W), np.uint16)
    labels[3, 4] = 300
    f = encode_labels(labels)
    assert (f.encoding, f.step) == ("mono16", 2 * W)
    np.testing.assert_array_equal(np.frombuffer(f.data, "<u2").reshape(H, W), labels)
    assert _decode(f)[3, 4, 0] == 300 >> 8
    small = np.ones((2, 2), np.uint8)
    assert encode_labels(small, force_mono16=True).encoding == "mono16"
    # The vocabulary's max id decides, so the encoding does not flip with frame content.
    assert encode_labels(small.astype(np.uint16), max_id=400).encoding == "mono16"
    assert encode_labels(small, max_id=12).encoding == "mono8"
    with pytest.raises(ValueError, match="above 255"):
        encode_labels(labels, max_id=12)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_labels(labels.astype(np.int32))


def test_encode_float_roundtrip():
    conf = RNG.uniform(0, 1, (H, W)).astype(np.float32)
    f = encode_float(conf)
    assert (f.encoding, f.step, f.is_bigendian) == ("32FC1", 4 * W, 0)
    np.testing.assert_array_equal(np.frombuffer(f.data, "<f4").reshape(H, W), conf)
    expected = np.floor(conf * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    np.testing.assert_array_equal(_decode(f)[..., 1], expected)


def test_encode_rgb_and_mono8_roundtrip():
    rgb = CASES["rgb8"][0]
    f = encode_rgb(rgb[:, ::-1])  # non-contiguous input is fine
    assert (f.encoding, f.step) == ("rgb8", 3 * W)
    np.testing.assert_array_equal(_decode(f), rgb[:, ::-1])
    gray = CASES["mono8"][0]
    np.testing.assert_array_equal(_decode(encode_mono8(gray))[..., 2], gray)
    with pytest.raises(ValueError):
        encode_rgb(gray)
    with pytest.raises(ValueError):
        encode_mono8(rgb)
