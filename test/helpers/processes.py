"""A node as a child process on the tiny model (a pytest plugin: test/conftest.py loads it for
the `tiny_process` fixture): start-up, output lines, the one-line failure rule."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers.tiny_models import tiny_files

TEST_DIR = Path(__file__).resolve().parents[1]


ROOT = TEST_DIR.parent


class NodeProcess:
    """A node subprocess whose merged stdout/stderr lines are collected by a thread."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5.0)
        return rc

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def tiny_node(tmp: Path, params: dict[str, str], patch: str = "") -> NodeProcess:
    """The node's main() on the tiny model; `patch` is test code run before main()."""
    code = "\n".join([
        "import sys, tempfile, time",
        "from pathlib import Path",
        f"sys.path.insert(0, {str(TEST_DIR)!r})",
        "from helpers.tiny_models import register_tiny",
        # A config folder per process: parallel processes rewriting one JSON file race.
        f"register_tiny(Path(tempfile.mkdtemp(dir={str(tmp)!r})))",
        patch,
        "from ovseg_ros.node.segment_node import main",
        "sys.exit(main())",
    ])
    argv = [sys.executable, "-c", code, "--ros-args"]
    for k, v in params.items():
        argv += ["-r", f"__ns:={v}"] if k == "__ns" else ["-p", f"{k}:={v}"]
    return NodeProcess(argv)


SLOW_INFERENCE = ("from ovseg_ros.core.pipeline import FramePipeline\n"
                  "_real = FramePipeline.process_batch\n"
                  "def _slow(self, frames, primary=0):\n"
                  "    print('INFERENCE STARTED', flush=True)\n"
                  "    time.sleep(30)\n"
                  "    return _real(self, frames, primary)\n"
                  "FramePipeline.process_batch = _slow\n")


@pytest.fixture(scope="module")
def tiny_process(tmp_path_factory):
    d = tmp_path_factory.mktemp("tinyproc")
    name, clip, heads = tiny_files(d)
    base = {"model": name, "clip_weights": str(clip), "heads": str(heads), "device": "cpu",
            "precision": "fp32", "backend": "torch", "input_size": "0"}
    return d, base


def assert_one_line_failure(p: NodeProcess, rc: int, *fragments: str) -> None:
    assert rc == 1, p.output
    failures = [line for line in p.lines if "start-up failed" in line]
    assert len(failures) == 1, p.output
    for fragment in fragments:
        assert fragment in failures[0], p.output
    assert "Traceback" not in p.output, p.output


