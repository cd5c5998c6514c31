"""`ovseg weights`: where each file is looked for and found, its size and sha256, the exact URL
and target path of what is missing, `--download` over a real HTTPS server on 127.0.0.1 (run as
a user runs it: the installed console script, a child process), and broken files named with
what to do (the same command in this process: each child would spend seconds importing torch).
The CLIP weights and heads are the tests' seeded tiny model written to files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.tiny_models import tiny_files, write_heads

from ovseg_ros.core import weights as W

# Nothing here depends on the ROS distro: .ci/run runs it on the first only.
pytestmark = pytest.mark.once
OVSEG = Path(sys.executable).parent / "ovseg"  # the console script pip wrote into the venv
TAG_URL = ("https://huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K/resolve/main/"
           "open_clip_pytorch_model.bin")


def ovseg_weights(*args: str, cache: Path, child: bool = False) -> subprocess.CompletedProcess:
    """`ovseg weights --cache-dir CACHE ARGS` as (returncode, stdout, stderr)."""
    argv = ["weights", "--cache-dir", str(cache), *map(str, args)]
    if child:
        assert OVSEG.is_file(), f"{OVSEG} is missing: run scripts/setup.sh (pip installs it)"
        return subprocess.run([str(OVSEG), *argv], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, HF_HUB_OFFLINE="1"))
    from ovseg_ros.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_found_files_are_listed_with_size_and_sha256(tmp_path):
    name, clip, heads = tiny_files(tmp_path)
    out = ovseg_weights("--model", name, "--clip-weights", clip, "--heads", heads,
                        cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for path in (clip, heads):
        found = [ln for ln in lines if ln.strip().startswith(f"found: {path}")]
        assert len(found) == 1, out.stdout
        assert f"sha256 {sha256(path)}" in found[0]
        assert f"{path.stat().st_size / 2**20:.1f} MB" in found[0]
    assert "MISSING" not in out.stdout and "BROKEN" not in out.stdout
    assert "Traceback" not in out.stderr


def test_missing_files_name_the_url_and_where_to_put_them(tmp_path):
    cache = tmp_path / "cache"
    url = "https://example.org/heads/last.pt"
    out = ovseg_weights("--heads", url, cache=cache)  # ViT-B-16 laion2b_s34b_b88k, the default
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    placed = cache / "clip" / "ViT-B-16_laion2b_s34b_b88k.bin"
    assert f"looked for: {placed}" in text
    assert f"MISSING: download {TAG_URL}" in text and f"put it at {placed}" in text
    head_target = W.cached_path_for_url(url, cache)
    assert f"MISSING: download {url}" in text and f"put it at {head_target}" in text
    assert text.count("ovseg weights --download") == 2
    # Putting the file where it says is what makes it found (the same look-up as the model's).
    head_target.parent.mkdir(parents=True)
    write_heads(head_target, width=768)
    again = ovseg_weights("--heads", url, "--clip-weights", "random", cache=cache)
    assert again.returncode == 0, again.stdout
    assert f"found: {head_target}" in again.stdout and "random" in again.stdout


def test_download_fetches_what_is_missing_over_https(tmp_path, https_folder):
    name, clip, _ = tiny_files(tmp_path)
    served = write_heads(https_folder.root / "last.pt")
    url = f"{https_folder.url}/last.pt"
    cache = tmp_path / "cache"
    before = ovseg_weights("--model", name, "--clip-weights", clip, "--heads", url, cache=cache)
    assert before.returncode == 1 and f"MISSING: download {url}" in before.stdout
    assert https_folder.requests == []  # reporting downloads nothing
    out = ovseg_weights("--model", name, "--clip-weights", clip, "--heads", url, "--download",
                        cache=cache, child=True)
    assert out.returncode == 0, out.stdout + out.stderr
    target = W.cached_path_for_url(url, cache)
    assert target.read_bytes() == served.read_bytes()
    assert f"found: {target}" in out.stdout and f"sha256 {sha256(served)}" in out.stdout
    assert https_folder.requests == ["/last.pt"]
    assert "B/s" in out.stderr or "100%" in out.stderr  # the progress bar


def test_corrupt_and_unfitting_files_say_which_and_what_to_do(tmp_path):
    name, clip, heads = tiny_files(tmp_path)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00 not a torch file" * 100)
    out = ovseg_weights("--model", name, "--clip-weights", clip, "--heads", corrupt,
                        cache=tmp_path / "cache")
    assert out.returncode == 1
    broken = [ln for ln in out.stdout.splitlines() if "BROKEN" in ln]
    assert len(broken) == 1 and str(corrupt) in broken[0] and "corrupt" in broken[0]
    assert "download it again" in broken[0]
    wide = write_heads(tmp_path / "wide.pt", width=768)  # ViT-B-16's heads on the tiny model
    out = ovseg_weights("--model", name, "--clip-weights", clip, "--heads", wide,
                        cache=tmp_path / "cache")
    assert out.returncode == 1 and "does not fit" in out.stdout
    bad_clip = tmp_path / "clip-bad.pt"
    torch.save({"nothing": torch.zeros(2)}, bad_clip)
    out = ovseg_weights("--model", name, "--clip-weights", bad_clip, "--heads", heads,
                        cache=tmp_path / "cache")
    assert out.returncode == 1, out.stdout
    broken = [ln for ln in out.stdout.splitlines() if "BROKEN" in ln]
    assert len(broken) == 1 and str(bad_clip) in broken[0] and "could not be loaded" in broken[0]
    assert "Traceback" not in out.stderr


def test_an_unreadable_file_is_named(tmp_path):
    """/proc/self/mem is a regular file whose first bytes cannot be read (EIO): a real read
    error, which chmod cannot give a test that runs as root."""
    name, clip, _ = tiny_files(tmp_path)
    out = ovseg_weights("--model", name, "--clip-weights", clip, "--heads", "/proc/self/mem",
                        cache=tmp_path / "cache")
    assert out.returncode == 1, out.stdout
    broken = [ln for ln in out.stdout.splitlines() if "BROKEN" in ln]
    assert len(broken) == 1 and "cannot read /proc/self/mem" in broken[0]
    assert "Traceback" not in out.stderr
