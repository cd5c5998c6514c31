"""Label palette, colourised labels and an alpha overlay with a legend (numpy + OpenCV only).

Colours are a function of the label id alone, so a class keeps its colour when the
vocabulary changes. Id 0 (background / unlabelled) is black and is never painted by
``overlay``. Every id a label image can hold (0..65535) has its own colour, different from
every other id's: Hydra keys its colour map by colour, so two ids sharing one would lose a class.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

# Ids 1.._N_GREEDY get colours picked greedily for maximum CIELAB distance from each other
# (and from black); later ids a golden-ratio hue walk, except where an id's hue colour is
# already taken by a lower id (8-bit RGB has room for only ~10,000 of the walk's colours):
# those ids take the next colour of a fixed spread-out sequence (_spare_colours).
_N_GREEDY = 64
_N_IDS = 65536  # label images are at most mono16
_GOLDEN = 0.6180339887498949


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) sRGB 0..255 float -> (N, 3) CIELAB (D65)."""
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab_l = 116.0 * f[:, 1] - 16.0
    return np.stack([lab_l, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], 1)


@functools.lru_cache(maxsize=2)
def _greedy_colours(n: int) -> np.ndarray:
    """n colours by farthest-point sampling in CIELAB over a fixed RGB grid (deterministic)."""
    g = np.arange(0, 256, 15, dtype=np.float64)
    cand = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    lab = _srgb_to_lab(cand)
    # Chromatic, mid-lightness candidates only: greys read as "unlabelled", and very dark or
    # very light colours disappear in an alpha blend.
    keep = (np.hypot(lab[:, 1], lab[:, 2]) > 25) & (lab[:, 0] > 30) & (lab[:, 0] < 92)
    cand, lab = cand[keep], lab[keep]
    dist = np.linalg.norm(lab - _srgb_to_lab(np.zeros((1, 3))), axis=1)
    out = np.empty((n, 3), np.uint8)
    for k in range(n):
        i = int(np.argmax(dist))
        out[k] = cand[i]
        dist = np.minimum(dist, np.linalg.norm(lab - lab[i], axis=1))
    return out


def _golden_colours(ids: np.ndarray) -> np.ndarray:
    """Golden-ratio hue walk with a small saturation/value cycle; (N,) ids -> (N, 3) uint8."""
    hue = (ids * _GOLDEN) % 1.0
    sat = np.array([0.85, 0.6, 1.0])[ids % 3]
    val = np.array([0.95, 1.0, 0.75])[(ids // 3) % 3]
    # Float HSV -> RGB (cv2's 8-bit HSV has only 180 hues, which would repeat colours).
    h6 = hue * 6.0
    sector = np.floor(h6).astype(int) % 6
    frac = h6 - np.floor(h6)
    p, q, t = val * (1 - sat), val * (1 - frac * sat), val * (1 - (1 - frac) * sat)
    table = np.stack(
        [
            np.stack([val, t, p], -1),
            np.stack([q, val, p], -1),
            np.stack([p, val, t], -1),
            np.stack([p, q, val], -1),
            np.stack([t, p, val], -1),
            np.stack([val, p, q], -1),
        ]
    )
    rgb = table[sector, np.arange(len(ids))]
    return np.round(rgb * 255.0).astype(np.uint8)


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) int64 0xRRGGBB."""
    c = rgb.astype(np.int64)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def _spare_colours(exclude: np.ndarray) -> np.ndarray:
    """Chromatic colours of a 64-level RGB grid, none in `exclude` (packed), ordered so that
    consecutive ones lie far apart: the grid coordinates' bits reversed and interleaved, so
    the coarse 2x2x2 grid comes first, then the 4x4x4 one, and so on. (M, 3) uint8."""
    levels = np.round(np.arange(64) * 255 / 63).astype(np.uint8)
    reverse = np.array([int(f"{i:06b}"[::-1], 2) for i in range(64)])
    order = np.arange(64 ** 3)
    axes = []
    for channel in range(3):
        coord = np.zeros_like(order)
        for bit in range(6):
            coord |= ((order >> (3 * bit + channel)) & 1) << bit
        axes.append(levels[reverse[coord]])
    grid = np.stack(axes, 1)
    high, low = grid.max(axis=1).astype(int), grid.min(axis=1).astype(int)
    keep = (high - low >= 64) & (high >= 96) & ~np.isin(_pack(grid), exclude)
    return grid[keep]


@functools.cache
def _table() -> np.ndarray:
    """(65536, 3) uint8: the colour of every label id, all different (built once)."""
    table = np.zeros((_N_IDS, 3), np.uint8)
    table[1:_N_GREEDY + 1] = _greedy_colours(_N_GREEDY)
    walk = _golden_colours(np.arange(_N_GREEDY + 1, _N_IDS))
    packed = _pack(walk)
    first = np.zeros(len(walk), bool)
    first[np.unique(packed, return_index=True)[1]] = True  # lowest id of each walk colour
    reserved = _pack(table[:_N_GREEDY + 1])  # black and the greedy colours
    own = first & ~np.isin(packed, reserved)
    spare = _spare_colours(np.concatenate([reserved, packed]))
    lost = int((~own).sum())
    if len(spare) < lost:  # fixed numbers: cannot happen unless the rules above change
        raise RuntimeError(f"palette: {lost} ids need a spare colour, {len(spare)} exist")
    walk[~own] = spare[:lost]
    table[_N_GREEDY + 1:] = walk
    return table


def _palette_view(n: int) -> np.ndarray:
    """The (65536, 3) palette, for ids 0..n-1; callers must not modify it."""
    if n > _N_IDS:
        raise ValueError(f"label ids go up to {_N_IDS - 1} (mono16); got {n - 1}")
    return _table()


def palette(n: int) -> np.ndarray:
    """Colours for label ids 0..n-1 as (n, 3) uint8 RGB; id 0 is black. Deterministic."""
    if n < 0:
        raise ValueError(f"palette: n must be >= 0, got {n}")
    return _palette_view(n)[:n].copy()


def colour_for_id(label_id: int) -> tuple[int, int, int]:
    """RGB colour of one label id (the same as ``palette(n)[label_id]`` for any n)."""
    if label_id < 0:
        raise ValueError(f"colour_for_id: label id must be >= 0, got {label_id}")
    r, g, b = _palette_view(int(label_id) + 1)[int(label_id)]
    return int(r), int(g), int(b)


def _check_labels(labels: np.ndarray) -> None:
    if not isinstance(labels, np.ndarray) or labels.ndim != 2:
        got = getattr(labels, "shape", type(labels).__name__)
        raise ValueError(f"labels must be an (H, W) integer array, got {got}")
    if labels.dtype.kind not in "ui":
        raise ValueError(f"labels must be integers, got {labels.dtype}")


def colorize(labels: np.ndarray) -> np.ndarray:
    """Label ids (H, W) -> colours (H, W, 3) uint8 RGB; 0 stays black."""
    _check_labels(labels)
    if labels.size == 0:
        return np.zeros((*labels.shape, 3), np.uint8)
    if labels.dtype == np.uint8:
        lut = _palette_view(256)
    else:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0:
            raise ValueError(f"colorize: negative label id {lo}")
        lut = _palette_view(hi + 1)
    return np.take(lut, labels, axis=0)  # ~4x faster than lut[labels]


def overlay(
    rgb: np.ndarray,
    labels: np.ndarray,
    alpha: float = 0.5,
    legend: Sequence[tuple[int, str]] | None = None,
) -> np.ndarray:
    """Blend label colours over ``rgb`` (H, W, 3) uint8 where ``labels`` (H, W) != 0.

    ``alpha`` is the weight of the label colour (0: image only, 1: colour only); background
    pixels keep the image exactly. ``legend`` lists the (id, name) pairs to show in a box in
    the top-left corner (entries that do not fit are summarised as "+N more"). Returns a new
    (H, W, 3) uint8 array; the inputs are not modified.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"overlay: rgb must be (H, W, 3), got {getattr(rgb, 'shape', rgb)}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"overlay: rgb must be uint8, got {rgb.dtype}")
    _check_labels(labels)
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"overlay: labels {labels.shape} do not match image {rgb.shape[:2]}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha}")

    import cv2  # here: the palette (`ovseg labelspace`) needs no OpenCV

    out = np.array(rgb, copy=True, order="C")
    mask = labels != 0
    if alpha > 0 and mask.any():
        blended = cv2.addWeighted(out, 1.0 - float(alpha), colorize(labels), float(alpha), 0.0)
        np.copyto(out, blended, where=mask[..., None])
    if legend:
        draw_legend(out, legend)
    return out


def draw_legend(img: np.ndarray, legend: Sequence[tuple[int, str]]) -> None:
    """Draw a legend box (swatch + name per entry) in the top-left corner of img, in place."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    h, w = img.shape[:2]
    scale = float(np.clip(min(h, w) / 900.0, 0.35, 1.6))
    thick = max(1, int(round(scale * 1.6)))
    (_, text_h), base = cv2.getTextSize("Ag", font, scale, thick)
    pad = max(2, (text_h + base) // 4)
    row_h = text_h + base + pad
    max_rows = (h - 2 * pad) // row_h
    if max_rows < 1 or w < 4 * pad:
        return  # image too small for even one row

    entries = [(int(i), str(name)) for i, name in legend]
    rows: list[tuple[int | None, str]] = list(entries)
    if len(rows) > max_rows:
        shown = max_rows - 1
        rows = list(entries[:shown]) + [(None, f"+{len(entries) - shown} more")]
    swatch = text_h + base
    text_x = pad + swatch + pad
    widths = [cv2.getTextSize(name, font, scale, thick)[0][0] for _, name in rows]
    x1 = min(w, text_x + max(widths) + pad)
    y1 = min(h, pad + len(rows) * row_h + pad)

    # Darken the box so white text reads on any background.
    img[:y1, :x1] = cv2.convertScaleAbs(img[:y1, :x1], alpha=0.35)
    for r, (label_id, name) in enumerate(rows):
        top = pad + r * row_h
        if label_id is not None:
            colour = colour_for_id(label_id)
            cv2.rectangle(img, (pad, top), (pad + swatch - 1, top + swatch - 1), colour, -1)
            cv2.rectangle(img, (pad, top), (pad + swatch - 1, top + swatch - 1), (255, 255, 255), 1)
        cv2.putText(
            img, name, (text_x, top + text_h), font, scale, (255, 255, 255), thick, cv2.LINE_AA
        )
