"""`ovseg segment --objects`: COCO results per frame that pycocotools decodes to the very
pixels of the frame's objects, with track ids from one counter across a folder's frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
from helpers.cli_inputs import picture


def test_segment_writes_coco_results_pycocotools_decodes(tmp_path, model_args):
    from pycocotools import mask as mask_utils
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"f{i}.png"), picture(i)[..., ::-1])
    out = tmp_path / "out"
    from ovseg_ros.cli.main import main

    assert main(["segment", str(frames), "--prompts", "cat, dog, car", "-o", str(out),
                 "--objects", *model_args]) == 0
    tracks = set()
    for i in range(3):
        results = json.loads((out / f"f{i}_instances.json").read_text())
        labels = cv2.imread(str(out / f"f{i}_labels.png"), cv2.IMREAD_UNCHANGED)
        assert results and len({r["track_id"] for r in results}) == len(results)
        union = np.zeros(labels.shape, bool)
        for r in results:
            mask = mask_utils.decode(r["segmentation"]).astype(bool)
            assert mask.shape == labels.shape and mask.sum() == r["area"]
            ys, xs = np.nonzero(mask)
            assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                 ys.max() - ys.min() + 1]
            assert np.all(labels[mask] == r["category_id"]) and not (union & mask).any()
            union |= mask
            tracks.add(r["track_id"])
    assert min(tracks) == 1  # ids from one counter across the folder's frames
