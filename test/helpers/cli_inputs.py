"""Inputs of the `ovseg` command tests (a pytest plugin: test/conftest.py loads it for the
`model_args` fixture): the tiny model's options and small pictures."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers.tiny_models import tiny_files


@pytest.fixture(scope="module")
def model_args(tmp_path_factory):
    name, clip, heads = tiny_files(tmp_path_factory.mktemp("cli_model"))
    return ["--model", name, "--clip-weights", str(clip), "--heads", str(heads),
            "--device", "cpu", "--precision", "fp32", "--backend", "torch", "--input-size", "64"]


def picture(seed: int, h=72, w=96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


