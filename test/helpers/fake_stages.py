"""A stand-in CLIP-DIY stage with known outputs and a FramePipeline around it (pipeline and
camera tests)."""

from __future__ import annotations

import threading

import numpy as np
import torch

from ovseg_ros.core import FramePipeline, KeyframeConfig

WAIT = 60.0  # generous bound so a broken pipeline fails instead of hanging; no timing asserted


class FakeStage:
    """Returns fixed presences per label id: class `id` gets probability presence[id] in one
    corner, the rest goes to background. Records the frames it ran on."""

    def __init__(self, presence=None, gate: threading.Event | None = None, fail=False):
        self.presence = presence or {}
        self.gate = gate
        self.fail = fail
        self.calls: list[tuple[tuple[int, ...], np.ndarray]] = []
        self.started = threading.Event()

    def __call__(self, rgb, result):
        self.calls.append((tuple(result.class_ids), rgb))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "test never released the stage"
        if self.fail:
            raise RuntimeError("boom")
        probs = torch.zeros(len(result.class_ids), 8, 8)
        probs[0] = 1.0
        for c, cid in enumerate(result.class_ids):
            p = self.presence.get(cid, 0.0)
            probs[c, 0, 0] = p
            probs[0, 0, 0] -= p
        return probs


def pipeline(seg, stage=None, clock=None, **cfg):
    base = dict(keyframes=True, keyframe_every_n=0, keyframe_on_prompt_change=False,
                asynchronous=False)
    base.update(cfg)
    return FramePipeline(seg, KeyframeConfig(**base), stage=stage or FakeStage(), clock=clock)


