"""3D from registered depth, without ROS (numpy; OpenCV only for the synthetic scene).

    depth = decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                         msg.data)                                   # (H, W) metres, NaN
    intr = PinholeIntrinsics.from_camera_info(info.k, info.width, info.height)
    cloud = build_cloud(depth, labels, confidence,
                        intr.for_image(W, H, colour_size=(w, h)), stride)
    cloud.points                                                     # (H', W') POINT_DTYPE
    class_points(cloud)                                              # {id: ClassPoint}
    write_ply("out.ply", cloud)

``DepthPairing`` pairs colour frames with depth by stamp (one per camera).
"""

from ovseg_ros.geometry.cloud import (
    FIELDS,
    POINT_DTYPE,
    POINT_STEP,
    CloudField,
    SemanticCloud,
    build_cloud,
    packed_colours,
    unpack_rgb,
)
from ovseg_ros.geometry.depth import DEPTH_ENCODINGS, DepthDecodeError, decode_depth
from ovseg_ros.geometry.intrinsics import (
    CameraInfoError,
    PinholeIntrinsics,
    nearest_index,
    pixel_rays,
)
from ovseg_ros.geometry.pairing import (
    DEFAULT_SLOP_S,
    DepthPairing,
    Miss,
    MissReason,
    Paired,
    PairingStats,
    PairRequest,
)
from ovseg_ros.geometry.ply import ply_vertices, write_ply
from ovseg_ros.geometry.summary import ClassPoint, class_points, mask_point
from ovseg_ros.geometry.synthetic import SYNTHETIC_NOTE, SyntheticDepth, synthetic_depth

__all__ = [
    "DEFAULT_SLOP_S",
    "DEPTH_ENCODINGS",
    "FIELDS",
    "POINT_DTYPE",
    "POINT_STEP",
    "SYNTHETIC_NOTE",
    "CameraInfoError",
    "ClassPoint",
    "CloudField",
    "DepthDecodeError",
    "DepthPairing",
    "Miss",
    "MissReason",
    "PairRequest",
    "Paired",
    "PairingStats",
    "PinholeIntrinsics",
    "SemanticCloud",
    "SyntheticDepth",
    "build_cloud",
    "class_points",
    "mask_point",
    "decode_depth",
    "nearest_index",
    "pixel_rays",
    "packed_colours",
    "ply_vertices",
    "synthetic_depth",
    "unpack_rgb",
    "write_ply",
]
