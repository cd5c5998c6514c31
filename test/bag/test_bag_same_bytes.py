"""Same input, same bytes: an output bag's bits depend on the input and the settings meant to
decide them, not on the thread count or on which process filled the text cache first; and
`--resume` refuses a partial made with settings that change the bits.

The model is the tiny image tower with ViT-B-16's text tower (`ovseg-tiny-text`): with the
old arithmetic, an embedding encoded beside other names (7 names: 560 prompts, split into
batches) or with another thread count differed in its last bits, and so did every
confidence value of the frames that used it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.bag_helpers import first_difference, read_rosbags
from helpers.tiny_models import write_clip_weights, write_heads

from ovseg_ros.bag.sample import write_sample_bag
from ovseg_ros.core.tiny import TINY_TEXT, WIDTH, register_tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, list[str]]:
    d = tmp_path_factory.mktemp("same_bytes")
    register_tiny(d, TINY_TEXT)
    clip = write_clip_weights(d / "clip.pt", TINY_TEXT)
    heads = write_heads(d / "heads.pt", width=WIDTH)
    src = write_sample_bag(d / "in", frames=6, size=160, depth=False)
    args = ["--model", TINY_TEXT, "--clip-weights", str(clip), "--heads", str(heads),
            "--device", "cpu", "--precision", "fp32", "--backend", "torch",
            "--input-size", "0", "--keyframes", "--keyframe-every-n", "3"]
    return src, args


def bag(src: Path, out: Path, args: list[str], *extra: str) -> subprocess.CompletedProcess:
    """`ovseg bag` in a process of its own (its own thread count and cache folder)."""
    return subprocess.run([sys.executable, "-m", "ovseg_ros.cli.main", "bag", str(src), "-o",
                           str(out), *args, *extra], capture_output=True, text=True,
                          timeout=600)


def test_thread_count_and_cache_history_change_no_bit(files, tmp_path):
    src, args = files
    # A fresh cache, one thread.
    first = bag(src, tmp_path / "one", args, "--prompts", "cat,dog,car", "--threads", "1",
                "--cache-dir", str(tmp_path / "cache1"))
    assert first.returncode == 0, first.stderr[-2000:]
    # Another process fills a second cache with the same names encoded among others, on
    # another thread count; a run on that cache and thread count must write the same bytes.
    fill = bag(src, tmp_path / "fill", args, "--prompts", "person,cat,sky,dog,tree,car,road",
               "--threads", "2", "--cache-dir", str(tmp_path / "cache2"))
    assert fill.returncode == 0, fill.stderr[-2000:]
    second = bag(src, tmp_path / "two", args, "--prompts", "cat,dog,car", "--threads", "2",
                 "--cache-dir", str(tmp_path / "cache2"))
    assert second.returncode == 0, second.stderr[-2000:]
    got, want = read_rosbags(tmp_path / "two"), read_rosbags(tmp_path / "one")
    assert any(topic == "/ovseg/confidence" for topic, *_ in got)
    assert (diff := first_difference(got, want)) is None, diff


def test_resume_refuses_a_partial_made_with_other_settings(files, tmp_path):
    src, args = files
    full = tmp_path / "full"
    assert bag(src, full, args, "--prompts", "cat,dog").returncode == 0
    reference = read_rosbags(full)
    out = tmp_path / "out"
    full.rename(tmp_path / "out.partial")  # a partial whose every frame is done
    refused = bag(src, out, args, "--prompts", "cat,dog", "--resume", "--precision", "bf16")
    assert refused.returncode == 2
    lines = [ln for ln in refused.stderr.splitlines() if "--resume" in ln]
    assert len(lines) == 1 and "other settings" in lines[0] and "precision" in lines[0], \
        refused.stderr[-2000:]
    assert (tmp_path / "out.partial").is_dir() and not out.exists()  # nothing lost
    # The vocabulary decides the bits too.
    refused = bag(src, out, args, "--prompts", "cat,dog,car", "--resume")
    assert refused.returncode == 2 and "prompts" in refused.stderr, refused.stderr[-2000:]
    # The same settings (another thread count) resume: every frame carried over.
    resumed = bag(src, out, args, "--prompts", "cat,dog", "--resume", "--threads", "1")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "6 frames carried over" in resumed.stdout
    assert (diff := first_difference(read_rosbags(out), reference)) is None, diff
