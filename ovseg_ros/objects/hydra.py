"""Hydra's class + instance image (32SC1), packed the way Hydra reads it.

Hydra's `InstanceImageReceiver` (hydra_ros, src/input/image_receiver.cpp: the instance
subscriber's fill step) takes each int32 pixel p and reads

    label    = p & 0xFFFF      (the low 16 bits: the class)
    instance = int16(p >> 16)  (the high 16 bits, arithmetic shift, stored as int16)

semantic_inference's own instance segmenter writes `(category_id << 16) | instance_id`, the
other way round. We follow the reader, since it is what consumes the image: class id in the
low 16 bits, the instance's index k (as in ~/instances) in the high 16 bits. Instances above
32767 would read back negative as int16, so their pixels carry instance 0 (the class stays);
`find_instances` at any sensible min_area never gets near that.
"""

from __future__ import annotations

import numpy as np

HYDRA_MAX_INSTANCE = 32767


def hydra_pack(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(H, W) int32 from labels (H, W) uint8/uint16 class ids and the instance image ids
    (H, W) uint16: every pixel keeps its class, instance pixels also their k."""
    if labels.shape != ids.shape:
        raise ValueError(f"labels {labels.shape} and instances {ids.shape} differ")
    inst = ids.astype(np.int32)
    inst[inst > HYDRA_MAX_INSTANCE] = 0
    return (inst << 16) | labels.astype(np.int32)


def hydra_decode(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hydra's rule, for tests and readers: (labels int32, instances int16) of an int32 image."""
    p = np.asarray(packed, np.int32)
    return p & 0xFFFF, (p >> 16).astype(np.int16)
