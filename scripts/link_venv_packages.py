"""Hard-link installed distributions (and what they require) from this venv into another.

    <source venv>/bin/python scripts/link_venv_packages.py TARGET_VENV torch torchvision

scripts/setup.sh uses it to share one torch install (torch, its CUDA libraries and triton:
about 5 GB) between the Kilted and Jazzy venvs of one checkout. Files are linked, not copied,
so the second venv costs no disk for them and takes seconds instead of a minute of unpacking.
Each venv stays a normal pip-managed venv: the dist-info (RECORD) is linked too, so pip sees
the packages as installed there and can upgrade or remove them (pip replaces files, it never
writes into one, so the other venv keeps its copy).

Skipped: distributions the target already has, and those named by --skip (setup.sh skips numpy,
which each distro pins for itself, and setuptools, which colcon caps). Console scripts are
copied with the target's interpreter in their first line. Exit code 3 when the two venvs are
on different file systems (no hard links): setup.sh then installs with pip instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib.metadata as md
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

from pip._vendor.packaging.requirements import Requirement


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: list[str], skip: set[str]) -> list[md.Distribution]:
    """The installed distributions `names` and, recursively, their unconditional requirements."""
    seen: dict[str, md.Distribution] = {}
    todo = [(n, frozenset()) for n in names]
    while todo:
        name, extras = todo.pop()
        key = canonical(name)
        if key in skip or key in seen:
            continue
        dist = md.distribution(name)
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            env = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(e) for e in env):
                todo.append((req.name, frozenset(req.extras)))
    return list(seen.values())


def installed(site: Path) -> set[str]:
    return {canonical(d.metadata["Name"]) for d in md.distributions(path=[str(site)])}


def link_dist(dist: md.Distribution, src_site: Path, dst_venv: Path, dst_site: Path) -> int:
    src_bin = Path(sys.prefix) / "bin"
    python = dst_venv / "bin" / "python"
    count = 0
    for rel in dist.files or []:
        src = Path(dist.locate_file(rel)).resolve()
        if src.suffix == ".pyc" or not src.is_file():
            continue
        if src.is_relative_to(src_site):
            dst = dst_site / src.relative_to(src_site)
        elif src.is_relative_to(src_bin):
            dst = dst_venv / "bin" / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = src.read_bytes()
            if text.startswith(b"#!"):  # entry point: this venv's interpreter
                text = b"#!" + str(python).encode() + text[text.index(b"\n"):]
            dst.write_bytes(text)
            shutil.copymode(src, dst)
            count += 1
            continue
        else:
            continue  # data files outside the venv's usual places: none in torch's closure
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            dst.unlink()
        os.link(src, dst)
        count += 1
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", type=Path, help="the venv to link into")
    ap.add_argument("names", nargs="+", help="distributions to link, with their requirements")
    ap.add_argument("--skip", action="append", default=[], help="distribution not to link")
    args = ap.parse_args()
    src_site = Path(sysconfig.get_paths()["purelib"]).resolve()
    dst_venv = args.target.resolve()
    rel = src_site.relative_to(Path(sys.prefix).resolve())
    dst_site = dst_venv / rel
    if not dst_site.is_dir():
        print(f"link_venv_packages: {dst_site} missing (not a venv of this Python?)",
              file=sys.stderr)
        return 2
    have = installed(dst_site)
    dists = [d for d in closure(args.names, {canonical(s) for s in args.skip})
             if canonical(d.metadata["Name"]) not in have]
    files = 0
    try:
        for dist in dists:
            files += link_dist(dist, src_site, dst_venv, dst_site)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            print("link_venv_packages: different file systems, no hard links", file=sys.stderr)
            return 3
        raise
    names = ", ".join(sorted(d.metadata["Name"] for d in dists)) or "nothing new"
    print(f"[setup] linked {files} files from {sys.prefix}: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
