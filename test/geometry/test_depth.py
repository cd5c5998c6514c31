"""ovseg_ros.geometry: depth decoding and pinhole intrinsics from CameraInfo numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ovseg_ros.geometry import (
    CameraInfoError,
    DepthDecodeError,
    PinholeIntrinsics,
    decode_depth,
    nearest_index,
    pixel_rays,
)
from ovseg_ros.io import ImageDecodeError, encode_16uc1, encode_float

K = [525.0, 0.0, 319.5, 0.0, 530.0, 239.5, 0.0, 0.0, 1.0]


def _decode(f, **kw):
    return decode_depth(f.encoding, f.height, f.width, f.step, f.is_bigendian, f.data, **kw)


# --------------------------------------------------------------------------- depth


def test_16uc1_millimetres_to_metres_with_zero_as_nan():
    mm = np.array([[0, 1, 1000], [1234, 65535, 0]], np.uint16)
    got = _decode(encode_16uc1(mm))
    assert got.dtype == np.float32 and got.shape == (2, 3)
    assert np.isnan(got[0, 0]) and np.isnan(got[1, 2])
    np.testing.assert_allclose(got[[0, 0, 1, 1], [1, 2, 0, 1]], [0.001, 1.0, 1.234, 65.535],
                               rtol=1e-6)


def test_16uc1_big_endian_and_row_padding():
    mm = np.arange(1, 13, dtype=np.uint16).reshape(3, 4) * 100
    step = 4 * 2 + 6
    buf = np.zeros((3, step), np.uint8)
    buf[:, :8] = mm.astype(">u2").view(np.uint8).reshape(3, 8)
    got = decode_depth("16UC1", 3, 4, step, 1, buf.tobytes())
    np.testing.assert_allclose(got, mm / 1000.0, rtol=1e-6)


def test_mono16_on_a_depth_topic_reads_as_millimetres():
    mm = np.array([[0, 2500]], np.uint16)
    f = encode_16uc1(mm)
    got = decode_depth("mono16", 1, 2, f.step, 0, f.data)
    assert np.isnan(got[0, 0]) and got[0, 1] == pytest.approx(2.5)


def test_32fc1_invalid_values_become_nan():
    m = np.array([[1.5, 0.0, -2.0], [np.inf, -np.inf, np.nan]], np.float32)
    got = _decode(encode_float(m))
    assert got[0, 0] == np.float32(1.5)
    assert np.isnan(got.ravel()[1:]).all()
    assert got.flags.writeable  # the invalid-value path returns a new array


def test_32fc1_clean_is_zero_copy_view():
    m = np.array([[1.0, np.nan], [2.0, 3.5]], np.float32)
    data = bytearray(m.tobytes())
    got = decode_depth("32FC1", 2, 2, 8, 0, data)
    assert np.shares_memory(got, np.frombuffer(data, np.uint8))
    np.testing.assert_array_equal(got[~np.isnan(got)], [1.0, 2.0, 3.5])


def test_32fc1_big_endian():
    m = np.array([[0.25, 4.0]], np.float32)
    got = decode_depth("32FC1", 1, 2, 8, 1, m.astype(">f4").tobytes())
    np.testing.assert_array_equal(got, m)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "8UC1", "16SC1", "32FC3",
                                      "64FC1", "16UC1; compressedDepth", "", "disparity"])
def test_other_encodings_are_refused_naming_the_encoding(encoding):
    with pytest.raises(DepthDecodeError) as err:
        decode_depth(encoding, 2, 2, 8, 0, bytes(32))
    assert repr(encoding) in str(err.value) and "16UC1" in str(err.value)
    assert isinstance(err.value, ImageDecodeError)  # the node's decode errors catch it too
    if "compressedDepth" in encoding:
        assert "republish" in str(err.value)


@pytest.mark.parametrize("height, width, step, size, match", [
    (2, 2, 3, 8, "step 3 is too small"),
    (2, 2, 4, 7, "truncated"),
    (0, 2, 4, 0, "invalid size"),
    (2, -1, 4, 8, "invalid size"),
])
def test_bad_sizes_are_typed_errors(height, width, step, size, match):
    with pytest.raises(DepthDecodeError, match=match):
        decode_depth("16UC1", height, width, step, 0, bytes(size))


def test_pixel_limit_is_checked_before_reading():
    with pytest.raises(DepthDecodeError, match="exceeds the limit"):
        decode_depth("32FC1", 5000, 5000, 20000, 0, b"", max_pixels=4096 * 4096)


# --------------------------------------------------------------------------- intrinsics


def test_from_camera_info_reads_k():
    i = PinholeIntrinsics.from_camera_info(K, 640, 480)
    assert (i.fx, i.fy, i.cx, i.cy, i.width, i.height) == (525.0, 530.0, 319.5, 239.5, 640, 480)


@pytest.mark.parametrize("k, match", [
    ([0.0] * 9, "focal lengths"),
    ([0.0, 0, 319.5, 0, 0.0, 239.5, 0, 0, 1], "not calibrated"),
    ([math.nan, 0, 319.5, 0, 530, 239.5, 0, 0, 1], "NaN or Inf"),
    ([525, 0, 319.5, 0, math.inf, 239.5, 0, 0, 1], "NaN or Inf"),
    ([-525, 0, 319.5, 0, 530, 239.5, 0, 0, 1], "focal lengths"),
    ([525, 0, 319.5, 0, 530, 239.5], "expected 9"),
    ([525, 3.0, 319.5, 0, 530, 239.5, 0, 0, 1], "skew"),
    ([525, 0, 319.5, 1.0, 530, 239.5, 0, 0, 1], "not an intrinsic matrix"),
])
def test_bad_camera_info_is_refused(k, match):
    with pytest.raises(CameraInfoError, match=match):
        PinholeIntrinsics.from_camera_info(k, 640, 480)


def test_empty_camera_info_size_is_refused():
    with pytest.raises(CameraInfoError, match="empty"):
        PinholeIntrinsics.from_camera_info(K, 0, 0)


def test_k_is_normalised_by_its_last_entry():
    i = PinholeIntrinsics.from_camera_info([2 * v for v in K], 640, 480)
    assert (i.fx, i.cy) == (525.0, 239.5)


def test_scaling_maps_pixel_centres():
    i = PinholeIntrinsics.from_camera_info(K, 640, 480)
    half = i.scaled_to(320, 240)
    assert (half.fx, half.fy) == (262.5, 265.0)
    # centre of colour pixel 319.5 (between 319 and 320) is depth pixel 159.5
    assert (half.cx, half.cy) == (159.5, 119.5)
    # a ray through a colour pixel centre passes through the same point in the half image:
    u_colour = 100.0  # covers depth pixel 49.75 (= (100 + 0.5) / 2 - 0.5)
    assert (u_colour - i.cx) / i.fx == pytest.approx((49.75 - half.cx) / half.fx)


def test_roi_and_binning():
    full = PinholeIntrinsics.from_camera_info(K, 640, 480)
    roi = PinholeIntrinsics.from_camera_info(K, 640, 480, roi=(100, 50, 320, 240))
    assert (roi.cx, roi.cy, roi.width, roi.height) == (219.5, 189.5, 320, 240)
    binned = PinholeIntrinsics.from_camera_info(K, 640, 480, binning_x=2, binning_y=2)
    assert binned == full.scaled_to(320, 240)
    with pytest.raises(CameraInfoError, match="outside"):
        PinholeIntrinsics.from_camera_info(K, 640, 480, roi=(400, 0, 320, 240))


def test_for_image_accepts_depth_or_colour_sized_camera_info():
    i = PinholeIntrinsics.from_camera_info(K, 640, 480)
    assert i.for_image(640, 480) is i
    assert i.for_image(320, 240, colour_size=(640, 480)) == i.scaled_to(320, 240)
    low = i.scaled_to(320, 240)
    assert low.for_image(320, 240, colour_size=(640, 480)) is low


@pytest.mark.parametrize("depth_size, colour_size, match", [
    ((320, 240), None, "must match the depth image"),
    ((1280, 720), (1280, 720), "camera_info is for 640x480"),
])
def test_camera_info_size_mismatch_is_refused(depth_size, colour_size, match):
    i = PinholeIntrinsics.from_camera_info(K, 640, 480)
    with pytest.raises(CameraInfoError, match=match):
        i.for_image(*depth_size, colour_size=colour_size)


def test_depth_that_is_not_the_colour_image_resized_is_refused():
    i = PinholeIntrinsics.from_camera_info(K, 640, 480)
    with pytest.raises(CameraInfoError, match="register"):
        i.for_image(424, 240, colour_size=(640, 480))


def test_pixel_rays_are_inverse_intrinsics_and_cached():
    i = PinholeIntrinsics.from_camera_info(K, 640, 480)
    rx, ry = pixel_rays(i, 2)
    assert rx.shape == (320,) and ry.shape == (240,)
    assert rx[10] == pytest.approx((20 - 319.5) / 525.0)
    assert ry[7] == pytest.approx((14 - 239.5) / 530.0)
    again = pixel_rays(PinholeIntrinsics.from_camera_info(list(K), 640, 480), 2)
    assert again[0] is rx  # an equal CameraInfo hits the cache: inverted once
    assert not rx.flags.writeable


def test_nearest_index_picks_the_pixel_whose_centre_is_nearest():
    assert nearest_index(4, 4) == slice(0, 4, 1)
    # 8 -> 4: each destination centre lies on a source pixel edge; ties go to the higher pixel
    np.testing.assert_array_equal(nearest_index(4, 8), [1, 3, 5, 7])
    np.testing.assert_array_equal(nearest_index(8, 4), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(nearest_index(3, 640), [106, 320, 533])
    np.testing.assert_array_equal(nearest_index(8, 4, stride=3), [0, 1, 3])
