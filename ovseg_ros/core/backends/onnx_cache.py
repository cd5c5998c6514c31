"""The exported encoder's file cache: keyed by everything that decides a file's content, and
verified against a manifest (size and sha256 of every file) before it is used.

A missing, interrupted, truncated, corrupt or stale entry is rebuilt, never loaded. Entries
are written into a temporary folder beside the cache and renamed into place, the manifest
last, so a crash or a concurrent process never sees a half-written file as valid.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

# Bump when the exported graph's inputs/outputs or the export code change: older entries are
# then stale and rebuilt (and removed, see `_prune`).
FORMAT = 1
_CHUNK = 8 << 20


def weights_digest(module: nn.Module) -> str:
    """sha256 over every tensor of `module`'s state dict (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "absent"


def library_versions() -> dict[str, str]:
    """The versions that decide an exported or quantised file's content."""
    return {"torch": torch.__version__,
            "onnxruntime": _version("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
            "onnx": _version("onnx"), "onnxscript": _version("onnxscript")}


def _stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def _key(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


def problem(target: Path, fields: Mapping[str, Any]) -> str | None:
    """Why the entry at `target` cannot be used for `fields`, or None when it is valid."""
    manifest = target.with_suffix(".json")
    if not manifest.exists():
        return "missing" if not target.exists() else "no manifest (an interrupted export?)"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({exc})"
    if not isinstance(data, dict) or data.get("key") != json.loads(json.dumps(fields)):
        return "its manifest was written for other weights or versions (stale)"
    files = data.get("files")
    if not isinstance(files, dict) or target.name not in files:
        return "its manifest does not list the model file"
    for name, entry in files.items():
        path = target.parent / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != entry.get("bytes"):
            return f"{name} has {path.stat().st_size} bytes, the manifest {entry.get('bytes')}"
        if file_sha256(path) != entry.get("sha256"):
            return f"{name} does not match its sha256 (corrupt)"
    return None


def _write_json(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _prune(folder: Path, stem: str, keep: Path, fields: Mapping[str, Any]) -> None:
    """Remove this model's entries that this install can never load again: written by other
    library versions or an older FORMAT (other weights are kept: a robot may switch)."""
    for manifest in folder.glob(f"{stem}-*.json"):
        if manifest == keep.with_suffix(".json"):
            continue
        try:
            key = json.loads(manifest.read_text()).get("key", {})
            files = list(json.loads(manifest.read_text()).get("files", {}))
        except (OSError, ValueError, AttributeError):
            continue
        if key.get("versions") == fields.get("versions") and key.get("format") == FORMAT:
            continue
        manifest.unlink(missing_ok=True)
        for name in files:
            (folder / Path(name).name).unlink(missing_ok=True)
        log.info("removed the stale ONNX cache entry %s", manifest.with_suffix(".onnx").name)


def cached_file(folder: Path, name: str, fields: Mapping[str, Any],
                build: Callable[[Path], list[Path]]) -> tuple[Path, bool]:
    """(path, built): the verified cache entry for `fields`, built when it is not valid.

    build(target) writes the model to `target` (plus side files) and returns every file it
    wrote. `fields` must be JSON-serialisable; FORMAT is added to them.
    """
    fields = {**fields, "format": FORMAT}
    stem = _stem(name)
    target = folder / f"{stem}-{_key(fields)}.onnx"
    why = problem(target, fields)
    if why is None:
        return target, False
    if why != "missing":
        log.warning("ONNX cache entry %s: %s; rebuilding it", target, why)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".building-") as tmp:
        files = build(Path(tmp) / target.name)
        entries = {f.name: {"bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files}
        target.with_suffix(".json").unlink(missing_ok=True)  # invalid until the files are in
        for f in files:
            os.replace(f, folder / f.name)
    _write_json(target.with_suffix(".json"), {"key": fields, "files": entries})
    _prune(folder, stem, target, fields)
    return target, True
