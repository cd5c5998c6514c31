"""Reading the node's PointCloud2 back (the demo saves it as .ply)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ovseg_ros.geometry import FIELDS, POINT_DTYPE, POINT_STEP


def points_from_msg(msg: Any) -> np.ndarray:
    """(height, width) POINT_DTYPE points of a cloud this package published (ValueError for
    another layout)."""
    layout = [(f.name, f.offset, f.datatype) for f in msg.fields]
    if layout != [(f.name, f.offset, f.datatype) for f in FIELDS] or msg.is_bigendian or \
            msg.point_step != POINT_STEP:
        raise ValueError(f"not an ovseg semantic cloud: fields {layout}")
    raw = np.frombuffer(bytes(msg.data), np.uint8)
    if raw.size != msg.row_step * msg.height or msg.row_step != POINT_STEP * msg.width:
        raise ValueError(f"cloud data is {raw.size} bytes, expected {msg.row_step * msg.height}")
    return raw.view(POINT_DTYPE).reshape(msg.height, msg.width)
