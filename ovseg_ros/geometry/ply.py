"""PLY files of a semantic cloud, readable by MeshLab, CloudCompare, Open3D, Blender, ...

Vertex properties: float x y z, uchar red green blue (the label colour), uint label,
float confidence. Points without a depth reading are left out by default (most viewers do
not accept NaN coordinates), so the file is an unorganized cloud.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .cloud import SemanticCloud, unpack_rgb

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                    ("blue", "u1"), ("label", "<u4"), ("confidence", "<f4")])
_PLY_TYPES = {"<f4": "float", "u1": "uchar", "<u4": "uint"}


def ply_vertices(cloud: SemanticCloud | np.ndarray, keep_invalid: bool = False) -> np.ndarray:
    """(N,) structured vertices (x y z red green blue label confidence) of the cloud, or of
    its points array (POINT_DTYPE, e.g. read back from a PointCloud2)."""
    pts = (cloud.points if isinstance(cloud, SemanticCloud) else cloud).reshape(-1)
    if not keep_invalid:
        pts = pts[~np.isnan(pts["z"])]
    out = np.empty(pts.size, _VERTEX)
    for name in ("x", "y", "z", "label", "confidence"):
        out[name] = pts[name]
    rgb = unpack_rgb(pts["rgb"])
    out["red"], out["green"], out["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return out


def write_ply(path: str | Path, cloud: SemanticCloud | np.ndarray, binary: bool = True,
              keep_invalid: bool = False, comments: Sequence[str] = ()) -> int:
    """Write the cloud as PLY (binary little-endian, or ascii); returns the vertex count.

    ``comments`` become ``comment`` header lines (one line each, e.g. "synthetic depth").
    """
    verts = ply_vertices(cloud, keep_invalid)
    lines = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0"]
    for text in comments:
        lines.append("comment " + " ".join(str(text).split()))
    lines.append(f"element vertex {verts.size}")
    for name in _VERTEX.names:
        lines.append(f"property {_PLY_TYPES[_VERTEX[name].str.replace('|', '')]} {name}")
    lines.append("end_header")
    header = ("\n".join(lines) + "\n").encode("ascii", "replace")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header)
        if binary:
            f.write(verts.tobytes())
        elif verts.size:
            np.savetxt(f, verts, fmt=["%.6g"] * 3 + ["%d"] * 4 + ["%.6g"])
    tmp.replace(path)
    return int(verts.size)
