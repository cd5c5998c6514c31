"""Ctrl-C on the installed `ovseg` executable: during its imports and while it segments a
folder, it ends with exit code 130 and one line, never a traceback, and the frames already
written stay whole."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from helpers.cli_inputs import picture

OVSEG = Path(sys.executable).parent / "ovseg"  # the console script pip wrote into the venv
# Random ViT-B-16 weights (made in memory, nothing downloaded) on small frames.
MODEL = ["--model", "ViT-B-16", "--clip-weights", "random", "--heads", "random",
         "--device", "cpu", "--precision", "fp32", "--backend", "torch", "--input-size", "64"]


def start(argv: list[str]) -> subprocess.Popen:
    assert OVSEG.is_file(), f"{OVSEG} is missing: run scripts/setup.sh (pip installs it)"
    return subprocess.Popen([str(OVSEG), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def interrupted(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_ctrl_c_during_the_imports(tmp_path):
    proc = start(["segment", str(tmp_path), "--prompts", "cup", *MODEL])
    time.sleep(0.3)  # importing torch and open_clip takes seconds
    assert proc.poll() is None
    rc, err = interrupted(proc)
    assert (rc, err.strip()) == (130, "ovseg: interrupted"), err


@pytest.mark.slow
def test_ctrl_c_while_segmenting_a_folder(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(400):
        cv2.imwrite(str(frames / f"f{i:03d}.png"), picture(i % 7, 64, 80))
    out = tmp_path / "out"
    proc = start(["segment", str(frames), "--prompts", "cup, chair", "-o", str(out), *MODEL])
    deadline = time.monotonic() + 240
    while len(list(out.glob("*.json"))) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    rc, err = interrupted(proc)
    assert rc == 130 and "Traceback" not in err, err
    assert err.strip().endswith("ovseg: interrupted"), err
    done = sorted(out.glob("*.json"))
    assert 2 <= len(done) < 400
    for report in done:  # every frame reported as done has whole outputs
        labels = cv2.imread(str(report.with_name(report.stem + "_labels.png")),
                            cv2.IMREAD_UNCHANGED)
        assert labels is not None and labels.shape == (64, 80), report
