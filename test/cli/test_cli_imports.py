"""`ovseg` answers at once where no model work is asked for: every `--help`, argument errors,
`ovseg weights` on a machine without the files and `ovseg labelspace` import none of torch,
open_clip, onnxruntime or rclpy (seconds each). Run as a user runs them, the installed console
script in a child process, with the interpreter's import log (`-X importtime`) read back; the
help texts speak to users (no source file names, an example per command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ovseg_ros.cli.main import SUBCOMMANDS, build_parser

pytestmark = pytest.mark.once  # nothing here depends on the ROS distro
OVSEG = Path(sys.executable).parent / "ovseg"  # the console script pip wrote into the venv
HEAVY = ("torch", "open_clip", "onnxruntime", "rclpy")


def run_logged(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess,
                                                              set[str]]:
    """`ovseg ARGS` under `python -X importtime`: its result (the import log taken out of its
    stderr) and the top-level names of every module it imported."""
    assert OVSEG.is_file(), f"{OVSEG} is missing: run scripts/setup.sh (pip installs it)"
    out = subprocess.run([sys.executable, "-X", "importtime", str(OVSEG), *args],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, **(env or {})))
    log = [ln for ln in out.stderr.splitlines() if ln.startswith("import time:")]
    assert log, "no import log: -X importtime did not apply"
    names = {ln.rsplit("|", 1)[1].strip().split(".")[0] for ln in log[1:]}  # [0]: the header
    out.stderr = "\n".join(ln for ln in out.stderr.splitlines()
                           if not ln.startswith("import time:"))
    return out, names


def assert_light(names: set[str], what: str) -> None:
    heavy = sorted(names.intersection(HEAVY))
    assert not heavy, f"{what} imported {heavy}"


HELPS = [["--help"]] + [[name, "--help"] for name in SUBCOMMANDS] + [
    ["prompts", "set", "--help"], ["param", "get", "--help"]]


@pytest.mark.parametrize("argv", HELPS, ids=" ".join)
def test_help_imports_no_model_and_no_ros(argv):
    out, names = run_logged(*argv)
    assert out.returncode == 0, out.stderr
    assert_light(names, f"ovseg {' '.join(argv)}")
    assert out.stdout.startswith(f"usage: ovseg {' '.join(argv[:-1])}".rstrip())
    # Words for users: what the command does and an example, no source files.
    assert ".py" not in out.stdout and "cli/" not in out.stdout, out.stdout
    if len(argv) <= 2:
        assert "example" in out.stdout, out.stdout


@pytest.mark.parametrize("argv, says", [
    (["segmnet"], "invalid choice: 'segmnet'"),
    (["segment", "--bogus", "x.png", "--prompts", "a"], "unrecognized arguments: --bogus"),
    (["segment", "x.png"], "the following arguments are required: --prompts"),
    (["segment", "x.png", "--prompts", "a", "--threshold", "2"], "outside [0, 1]"),
    (["bag", "in.mcap", "-o", "out", "--ray-bogus"], "unrecognized arguments: --ray-bogus"),
    (["prompts"], "the following arguments are required"),
    (["watch", "--count", "many"], "invalid int value: 'many'"),
    ([], "the following arguments are required: COMMAND"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_argument_errors_import_no_model_and_no_ros(argv, says):
    out, names = run_logged(*argv)
    assert out.returncode == 2, out.stdout + out.stderr
    assert says in out.stderr and out.stderr.startswith("usage: ovseg"), out.stderr
    assert "Traceback" not in out.stderr
    assert_light(names, f"ovseg {' '.join(argv)}")


def test_weights_without_the_files_imports_no_model(tmp_path):
    """A fresh machine: every file missing, each with its URL and where to put it."""
    out, names = run_logged("weights", "--cache-dir", str(tmp_path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.count("MISSING: download https://") == 2, out.stdout
    assert f"put it at {tmp_path}/clip/ViT-B-16_laion2b_s34b_b88k.bin" in out.stdout
    assert_light(names, "ovseg weights")
    out, names = run_logged("weights", "--clip-weights", "random", "--heads", "random")
    assert out.returncode == 0 and out.stdout.count("random: seeded random") == 2, out.stdout
    assert_light(names, "ovseg weights (random)")


def test_labelspace_imports_no_model(tmp_path):
    out, names = run_logged("labelspace", "--prompts", "chair, door", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "chair" in (tmp_path / "ovseg_label_space.yaml").read_text()
    assert_light(names, "ovseg labelspace")
    assert "cv2" not in names, "ovseg labelspace imported OpenCV (the palette needs numpy only)"


def test_the_registry_names_every_sub_command():
    """SUBCOMMANDS (what `ovseg X` loads to parse X) and the full parser agree."""
    import argparse

    full = next(a for a in build_parser()._actions
                if isinstance(a, argparse._SubParsersAction))
    assert list(full.choices) == list(SUBCOMMANDS)
    for name in SUBCOMMANDS:  # each parses from the parser that loads its module alone
        alone = next(a for a in build_parser([name])._actions
                     if isinstance(a, argparse._SubParsersAction))
        assert name in alone.choices
