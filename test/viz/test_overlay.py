"""ovseg_ros.viz.overlay: palette, colorize, alpha overlay, legend."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ovseg_ros.viz import colorize, colour_for_id, overlay, palette


def test_palette_deterministic_and_id0_black():
    p = palette(300)
    assert p.shape == (300, 3) and p.dtype == np.uint8
    np.testing.assert_array_equal(p, palette(300))
    np.testing.assert_array_equal(palette(10), p[:10])
    assert tuple(p[0]) == (0, 0, 0)
    assert (p[1:].max(axis=1) > 0).all()
    assert palette(0).shape == (0, 3)


def test_colour_independent_of_palette_size():
    for i in (1, 5, 64, 65, 200, 4000):
        assert colour_for_id(i) == tuple(int(v) for v in palette(i + 1)[i])
    assert colour_for_id(3) == tuple(int(v) for v in palette(5000)[3])
    with pytest.raises(ValueError):
        colour_for_id(-1)


def test_palette_well_separated():
    p = palette(33).astype(float)[1:]
    d = np.linalg.norm(p[:, None] - p[None], axis=2) + 1e9 * np.eye(len(p))
    assert d.min() > 40  # RGB distance between any two of the first 32 class colours
    many = palette(1024)[1:]
    assert len(np.unique(many, axis=0)) > 0.95 * len(many)


def test_palette_returns_a_copy():
    p = palette(4)
    p[:] = 7
    assert colour_for_id(1) != (7, 7, 7)


def test_colorize():
    labels = np.array([[0, 1], [2, 1000]], np.uint16)
    out = colorize(labels)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (0, 0, 0)
    assert tuple(out[0, 1]) == colour_for_id(1)
    assert tuple(out[1, 1]) == colour_for_id(1000)
    np.testing.assert_array_equal(colorize(labels[:1].astype(np.uint8)), out[:1])
    with pytest.raises(ValueError, match="negative"):
        colorize(np.array([[-1]], np.int32))
    with pytest.raises(ValueError):
        colorize(np.zeros((2, 2), np.float32))


def _scene(h: int = 120, w: int = 160):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), np.uint16)
    labels[60:, :80] = 1
    labels[60:, 80:] = 7
    return rgb, labels


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_overlay_blends_only_labelled_pixels(alpha):
    rgb, labels = _scene()
    before = rgb.copy()
    out = overlay(rgb, labels, alpha)
    np.testing.assert_array_equal(rgb, before)  # input untouched
    bg = labels == 0
    np.testing.assert_array_equal(out[bg], rgb[bg])
    col = colorize(labels).astype(float)
    expected = rgb.astype(float) * (1 - alpha) + col * alpha
    fg = ~bg
    assert np.abs(out[fg].astype(float) - expected[fg]).max() <= 1.0
    if 0 < alpha:
        # every labelled pixel moved toward its class colour
        d_before = np.abs(rgb[fg].astype(float) - col[fg]).sum(axis=1)
        d_after = np.abs(out[fg].astype(float) - col[fg]).sum(axis=1)
        assert (d_after <= d_before + 1.5).all() and d_after.mean() < d_before.mean()


def test_overlay_legend_drawn_in_top_left_box():
    rgb, labels = _scene(480, 640)
    plain = overlay(rgb, labels, 0.5)
    with_legend = overlay(rgb, labels, 0.5, legend=[(1, "chair"), (7, "person")])
    diff = np.any(plain != with_legend, axis=2)
    ys, xs = np.nonzero(diff)
    assert len(ys) > 500
    assert ys.max() < 480 // 3 and xs.max() < 640 // 2  # a compact box in the corner
    box = with_legend[: ys.max() + 1, : xs.max() + 1].reshape(-1, 3)
    for label_id in (1, 7):  # both swatches present
        assert (box == colour_for_id(label_id)).all(axis=1).sum() > 20


def test_overlay_legend_clips_many_entries():
    rgb, labels = _scene(100, 120)
    legend = [(i, f"class number {i}") for i in range(1, 200)]
    out = overlay(rgb, labels, 0.5, legend=legend)
    assert out.shape == rgb.shape
    tiny = overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), 0.5, [(1, "a")])
    assert tiny.shape == (4, 4, 3)


def test_overlay_rejects_bad_input():
    rgb, labels = _scene()
    with pytest.raises(ValueError, match="do not match"):
        overlay(rgb, labels[1:], 0.5)
    with pytest.raises(ValueError, match="alpha"):
        overlay(rgb, labels, 1.5)
    with pytest.raises(ValueError, match="uint8"):
        overlay(rgb.astype(np.float32), labels, 0.5)


@pytest.mark.quiet  # a time bound: only on an idle machine
def test_overlay_fast_enough_for_vga_video():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    labels = rng.integers(0, 8, (480, 640)).astype(np.uint16)
    legend = [(i, f"class {i}") for i in range(1, 8)]
    overlay(rgb, labels, 0.5, legend)
    n = 10
    t = time.perf_counter()
    for _ in range(n):
        overlay(rgb, labels, 0.5, legend)
    per_frame = (time.perf_counter() - t) / n
    # ~10 ms measured on 2 cores; the bound only catches per-pixel Python loops.
    assert per_frame < 0.1
