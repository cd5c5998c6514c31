"""ovseg_ros.geometry: the semantic cloud (projection, labels, invalid depth, resolutions,
stride), per-class medians, the PLY writer and the synthetic sample depth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ovseg_ros.geometry import (
    POINT_DTYPE,
    SYNTHETIC_NOTE,
    CameraInfoError,
    PinholeIntrinsics,
    build_cloud,
    class_points,
    decode_depth,
    synthetic_depth,
    unpack_rgb,
    write_ply,
)
from ovseg_ros.io import encode_16uc1, encode_float
from ovseg_ros.viz import colour_for_id

H, W = 480, 640
K = [525.0, 0.0, 319.5, 0.0, 530.0, 241.0, 0.0, 0.0, 1.0]
INTR = PinholeIntrinsics.from_camera_info(K, W, H)
RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 12, (H, W)).astype(np.uint16)
CONF = RNG.random((H, W), dtype=np.float32)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PIXELS = [(0, 0), (W - 1, H - 1), (320, 240), (17, 401), (600, 33), (123, 456)]  # (u, v)


def plane_depth_m(intr: PinholeIntrinsics, normal=(0.0, -0.3, 1.0), dist=2.0) -> np.ndarray:
    """Depth z of the plane n . X = dist seen by intr, per pixel (float64, metres)."""
    n = np.asarray(normal) / np.linalg.norm(normal)
    u = np.arange(intr.width)[None, :]
    v = np.arange(intr.height)[:, None]
    denom = n[0] * (u - intr.cx) / intr.fx + n[1] * (v - intr.cy) / intr.fy + n[2]
    return dist / denom


def depth_16uc1(z_m: np.ndarray) -> np.ndarray:
    f = encode_16uc1(np.round(z_m * 1000).astype(np.uint16))
    return decode_depth(f.encoding, f.height, f.width, f.step, f.is_bigendian, f.data)


def test_point_layout_is_the_pointcloud2_layout():
    assert POINT_DTYPE.itemsize == 24
    assert [(n, POINT_DTYPE.fields[n][1]) for n in POINT_DTYPE.names] == [
        ("x", 0), ("y", 4), ("z", 8), ("rgb", 12), ("label", 16), ("confidence", 20)]


def test_tilted_plane_projects_to_known_points():
    true_z = plane_depth_m(INTR)
    cloud = build_cloud(depth_16uc1(true_z), LABELS, CONF, INTR)
    assert (cloud.height, cloud.width) == (H, W) and cloud.points.dtype == POINT_DTYPE
    assert cloud.valid == H * W and cloud.is_dense
    p = cloud.points
    assert np.abs(p["z"] - true_z).max() <= 0.0005 + 1e-6  # mm rounding: within 1 mm
    for u, v in PIXELS:
        z = float(p["z"][v, u])
        assert p["x"][v, u] == pytest.approx((u - 319.5) * z / 525.0, rel=1e-5, abs=1e-7)
        assert p["y"][v, u] == pytest.approx((v - 241.0) * z / 530.0, rel=1e-5, abs=1e-7)
        # and on the plane itself (the true point, to the depth's 1 mm)
        true = np.array([(u - 319.5) / 525.0, (v - 241.0) / 530.0, 1.0]) * true_z[v, u]
        assert np.abs(np.array([p["x"][v, u], p["y"][v, u], z]) - true).max() < 1e-3


def test_label_confidence_and_colour_fields_follow_the_label_image():
    cloud = build_cloud(np.full((H, W), 1.5, np.float32), LABELS, CONF, INTR)
    p = cloud.points
    np.testing.assert_array_equal(p["label"], LABELS)
    np.testing.assert_array_equal(p["confidence"], CONF)
    for u, v in PIXELS:
        assert tuple(unpack_rgb(p["rgb"][v, u])) == colour_for_id(int(LABELS[v, u]))
    assert np.isfinite(p["rgb"]).all()  # alpha 0 keeps the packed float finite


def test_invalid_depth_gives_nan_points_that_keep_their_label():
    z = np.full((H, W), 2.0, np.float32)
    z[10, 20] = np.nan
    z[11, 20] = 0.0
    z[12, 20] = -1.0
    z[13, 20] = np.inf
    cloud = build_cloud(z, LABELS, CONF, INTR)
    p = cloud.points
    for v in (10, 11, 12, 13):
        assert np.isnan([p["x"][v, 20], p["y"][v, 20], p["z"][v, 20]]).all()
        assert p["label"][v, 20] == LABELS[v, 20]
    assert cloud.valid == H * W - 4 and not cloud.is_dense
    assert np.isfinite(p["z"]).sum() == H * W - 4


def test_16uc1_zero_and_32fc1_nan_inf_negative_all_become_nan_points():
    mm = np.full((4, 6), 1000, np.uint16)
    mm[1, 2] = 0
    m = np.full((4, 6), 1.0, np.float32)
    m[0, 0], m[1, 1], m[2, 2], m[3, 3] = np.nan, np.inf, -0.5, 0.0
    intr = PinholeIntrinsics(5.0, 5.0, 2.5, 1.5, 6, 4)
    lab, conf = np.ones((4, 6), np.uint16), np.ones((4, 6), np.float32)
    for f, bad in ((encode_16uc1(mm), 1), (encode_float(m), 4)):
        depth = decode_depth(f.encoding, f.height, f.width, f.step, 0, f.data)
        cloud = build_cloud(depth, lab, conf, intr)
        assert cloud.valid == 24 - bad
        assert np.isnan(cloud.points["z"]).sum() == bad


def test_depth_at_half_the_colour_resolution_uses_scaled_intrinsics():
    colour_info = INTR  # CameraInfo of the colour camera (640x480)
    dh, dw = H // 2, W // 2
    depth_intr = colour_info.for_image(dw, dh, colour_size=(W, H))
    true_z = plane_depth_m(depth_intr)
    blocks = np.kron(RNG.integers(1, 9, (dh, dw)), np.ones((2, 2))).astype(np.uint16)
    cloud = build_cloud(depth_16uc1(true_z), blocks, CONF, depth_intr)
    p = cloud.points
    assert (cloud.height, cloud.width) == (dh, dw)
    fx, cx, fy, cy = 525.0 / 2, (319.5 + 0.5) / 2 - 0.5, 530.0 / 2, (241.0 + 0.5) / 2 - 0.5
    for u, v in [(0, 0), (dw - 1, dh - 1), (100, 50), (13, 200)]:
        z = float(p["z"][v, u])
        assert abs(z - true_z[v, u]) <= 0.0005 + 1e-6
        assert p["x"][v, u] == pytest.approx((u - cx) * z / fx, rel=1e-5, abs=1e-7)
        assert p["y"][v, u] == pytest.approx((v - cy) * z / fy, rel=1e-5, abs=1e-7)
        # the point lies on the colour camera's ray through the same image location
        u_c = 525.0 * p["x"][v, u] / z + 319.5
        assert u_c == pytest.approx((u + 0.5) * 2 - 0.5, abs=1e-3)
    np.testing.assert_array_equal(p["label"], blocks[::2, ::2])  # nearest = its 2x2 block
    np.testing.assert_array_equal(p["confidence"], CONF[1::2, 1::2])


def test_depth_above_the_label_resolution_samples_the_nearest_label():
    lab = RNG.integers(0, 5, (H // 2, W // 2)).astype(np.uint16)
    conf = RNG.random((H // 2, W // 2), dtype=np.float32)
    cloud = build_cloud(np.ones((H, W), np.float32), lab, conf, INTR)
    np.testing.assert_array_equal(cloud.points["label"], np.repeat(np.repeat(lab, 2, 0), 2, 1))


def test_stride_decimates_rows_and_columns():
    true_z = plane_depth_m(INTR)
    cloud = build_cloud(depth_16uc1(true_z), LABELS, CONF, INTR, stride=3)
    p = cloud.points
    assert (cloud.height, cloud.width) == (160, 214) and cloud.stride == 3
    for r, c in [(0, 0), (159, 213), (50, 100)]:
        u, v = 3 * c, 3 * r
        z = float(p["z"][r, c])
        assert abs(z - true_z[v, u]) <= 0.0005 + 1e-6
        assert p["x"][r, c] == pytest.approx((u - 319.5) * z / 525.0, rel=1e-5, abs=1e-7)
        assert p["y"][r, c] == pytest.approx((v - 241.0) * z / 530.0, rel=1e-5, abs=1e-7)
        assert p["label"][r, c] == LABELS[v, u]
    assert cloud.row_step == 214 * 24 and len(cloud.data()) == 160 * 214 * 24


@pytest.mark.parametrize("kwargs, error, match", [
    ({"intrinsics": PinholeIntrinsics(500, 500, 159.5, 119.5, 320, 240)}, CameraInfoError,
     "intrinsics are for 320x240"),
    ({"labels": np.zeros((480, 480), np.uint16), "confidence": np.zeros((480, 480), np.float32)},
     CameraInfoError, "not the colour image"),
    ({"labels": np.zeros((H, W), np.int32)}, ValueError, "labels"),
    ({"confidence": np.zeros((H, W - 1), np.float32)}, ValueError, "differ"),
    ({"depth": np.zeros((H, W), np.uint16)}, ValueError, "depth"),
    ({"stride": 0}, ValueError, "stride"),
])
def test_bad_inputs_are_typed_errors(kwargs, error, match):
    args = {"depth": np.ones((H, W), np.float32), "labels": LABELS, "confidence": CONF,
            "intrinsics": INTR, **kwargs}
    with pytest.raises(error, match=match):
        build_cloud(**args)


def test_class_medians_resist_a_few_outliers():
    z = np.full((H, W), 3.0, np.float32)
    lab = np.zeros((H, W), np.uint16)
    lab[200:300, 250:350] = 4  # an object at 1.25 m, 100 x 100 pixels
    z[200:300, 250:350] = 1.25
    z[200:300, 250:258] = 9.0  # 8% of its pixels see the wall behind it
    z[200:205, 300:350] = np.nan  # and some have no reading
    lab[0:10, 0:10] = 7  # a class whose points all lack depth
    z[0:10, 0:10] = np.nan
    cloud = build_cloud(z, lab, np.ones((H, W), np.float32), INTR)
    pts = class_points(cloud)
    obj = pts[4]
    assert obj.count == 100 * 100 - 5 * 50
    mine = (cloud.points["label"] == 4) & ~np.isnan(cloud.points["z"])
    xyz = np.stack([cloud.points[a][mine] for a in "xyz"], 1)
    np.testing.assert_allclose(obj.median, np.median(xyz, axis=0), rtol=1e-6)
    # the object's own points (no wall behind it): the median stays on them, the mean does not
    inl = mine & (cloud.points["z"] < 2)
    centre = np.array([np.median(cloud.points[a][inl]) for a in "xyz"])
    assert obj.median[2] == pytest.approx(1.25, abs=1e-6)
    assert np.abs(np.array(obj.median) - centre).max() < 0.015
    assert np.abs(xyz.mean(0) - centre).max() > 0.5
    assert 7 not in pts and pts[0].count == H * W - 100 * 100 - 10 * 10
    assert pts[0].median[2] == pytest.approx(3.0)
    assert list(pts) == sorted(pts)


def test_class_points_of_a_cloud_without_depth_is_empty():
    z = np.full((4, 4), np.nan, np.float32)
    cloud = build_cloud(z, np.ones((4, 4), np.uint16), np.ones((4, 4), np.float32),
                        PinholeIntrinsics(2.0, 2.0, 1.5, 1.5, 4, 4))
    assert class_points(cloud) == {}


def _read_ply(path: Path) -> tuple[list[str], np.ndarray]:
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode().splitlines()
    props = [ln.split()[1:] for ln in header if ln.startswith("property")]
    types = {"float": "<f4", "uchar": "u1", "uint": "<u4"}
    dtype = np.dtype([(name, types[t]) for t, name in props])
    n = int(next(ln for ln in header if ln.startswith("element vertex")).split()[2])
    if "format binary_little_endian 1.0" in header:
        return header, np.frombuffer(raw[end:], dtype, count=n)
    rows = np.loadtxt(raw[end:].decode().splitlines(), ndmin=2)
    out = np.empty(n, dtype)
    for i, name in enumerate(dtype.names):
        out[name] = rows[:, i]
    return header, out


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    z = np.full((6, 8), 2.0, np.float32)
    z[0, :3] = np.nan
    lab = np.arange(48, dtype=np.uint16).reshape(6, 8) % 5
    conf = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    cloud = build_cloud(z, lab, conf, PinholeIntrinsics(4.0, 4.0, 3.5, 2.5, 8, 6))
    path = tmp_path / "cloud.ply"
    n = write_ply(path, cloud, binary=binary, comments=[SYNTHETIC_NOTE])
    header, verts = _read_ply(path)
    assert n == 45 == verts.size
    assert header[0] == "ply" and any(SYNTHETIC_NOTE in ln for ln in header)
    valid = ~np.isnan(cloud.points["z"].ravel())
    src = cloud.points.reshape(-1)[valid]
    tol = 0 if binary else 1e-5
    for name in ("x", "y", "z", "confidence"):
        np.testing.assert_allclose(verts[name], src[name], atol=tol, rtol=tol)
    np.testing.assert_array_equal(verts["label"], src["label"])
    colours = np.array([colour_for_id(int(i)) for i in src["label"]])
    np.testing.assert_array_equal(np.stack([verts["red"], verts["green"], verts["blue"]], 1),
                                  colours)


@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"])
def test_synthetic_depth_of_the_samples(name):
    rgb = cv2.imread(str(SAMPLES / name))[..., ::-1].copy()
    a, b = synthetic_depth(rgb), synthetic_depth(rgb.copy())
    np.testing.assert_array_equal(a.depth_mm, b.depth_mm)  # deterministic
    h, w = rgb.shape[:2]
    assert a.depth_mm.shape == (h, w) and a.depth_mm.dtype == np.uint16
    assert "SYNTHETIC" in a.note
    assert (a.intrinsics.width, a.intrinsics.height) == (w, h)
    invalid = a.depth_mm == 0
    assert invalid[:, :5].all() and 0.02 < invalid.mean() < 0.6
    valid_m = a.depth_mm[~invalid] / 1000.0
    assert valid_m.min() >= 1.0 and valid_m.max() <= 4.0
    # floor pixels (bottom row, not nearer than the floor) lie 1.2 m below the camera
    depth = a.depth_mm.astype(np.float32) / 1000.0
    depth[invalid] = np.nan
    cloud = build_cloud(depth, np.zeros((h, w), np.uint16), np.zeros((h, w), np.float32),
                        a.intrinsics)
    v = h - 1
    floor_z = 1.2 * a.intrinsics.fy / (v - a.intrinsics.cy)
    on_floor = np.abs(cloud.points["z"][v] - floor_z) < 1e-3
    assert on_floor.any()
    np.testing.assert_allclose(cloud.points["y"][v][on_floor], 1.2, atol=1e-3)


@pytest.mark.parametrize("depths, median", [([1.0, 2.0, 100.0], 2.0),
                                            ([1.0, 2.0, 3.0, 100.0], 2.5), ([4.0], 4.0)])
def test_median_of_odd_and_even_counts(depths, median):
    n = len(depths)
    z = np.array([depths + [7.0] * (4 - n)], np.float32)
    lab = np.array([[5] * n + [1] * (4 - n)], np.uint16)
    pts = class_points(build_cloud(z, lab, np.ones((1, 4), np.float32),
                                   PinholeIntrinsics(1.0, 1.0, 1.5, 0.0, 4, 1)))
    assert pts[5].median[2] == median and pts[5].count == n
