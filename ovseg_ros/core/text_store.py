"""Text embeddings kept on disk, so a name encoded once costs a file read at every later start.

One file per class name under `<cache_dir>/text/<model>-<key>/`, where the key covers
everything that decides an embedding's value (`store_key`): the model, a sha256 of the text
tower's tensors, the prompt templates, the device type and dtype the tower runs in, the
encoder's code path, and the torch and open_clip versions. Each file repeats the key's digest
and its name in a small header and carries a sha256 of its numbers, so a truncated, corrupt or
foreign file (another key, another name) is ignored with one warning and written again.

Several processes may share the folder (the node, `ovseg segment`, every `ovseg bag` or Ray
worker): each file is written to a temporary name in the same folder and renamed into place,
so a reader sees a whole file or none, and two writers of one name write the same numbers.

File layout: MAGIC, a 4-byte little-endian header length, the JSON header
{"key", "name", "dim", "sha256"}, then `dim` little-endian float32 values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

MAGIC = b"OVSEGTXT"
# Bump when the text encoder's arithmetic changes: older files then sit in a folder no key
# names any more. 2: each name encoded alone on one thread (text.py).
FORMAT = 2
_HEADER = struct.Struct("<I")
_MAX_HEADER = 4096


def text_weights_digest(clip: nn.Module) -> str:
    """sha256 over the tensors of everything but the image tower (names, dtypes, shapes,
    bytes): the text tower's weights as they will run."""
    digest = hashlib.sha256()
    for name, tensor in sorted(clip.state_dict().items()):
        if name.startswith("visual."):
            continue
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def store_key(model: str, clip: nn.Module, templates: Sequence[str], device: torch.device,
              dtype: torch.dtype, encoder: str) -> dict[str, Any]:
    """Everything an embedding's value depends on. encoder: the code path ("prefix" when the
    templates' shared prefixes are reused, "full" otherwise). Not the thread count, nor the
    names encoded beside it: neither changes a bit (text.py)."""
    return {"format": FORMAT, "model": model, "text_weights": text_weights_digest(clip),
            "templates": hashlib.sha256("\n".join(templates).encode()).hexdigest(),
            "device": device.type, "dtype": str(dtype).replace("torch.", ""),
            # The CPU kernels (AVX2, AVX512, ...) round differently: a folder shared by machines
            # of several CPU classes keeps one set of files per class.
            "kernels": torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else "",
            "encoder": encoder,
            "versions": {"torch": torch.__version__, "open_clip": _version("open_clip_torch")}}


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class TextEmbeddingStore:
    """Per-name embedding files for one key. Thread-safe; never raises on a bad or unwritable
    file (the embedding is then computed as if the file were absent)."""

    def __init__(self, folder: Path, key: Mapping[str, Any]):
        self.key = dict(key)
        self.digest = _digest(self.key)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(self.key.get("model", ""))) or "model"
        self.folder = Path(folder) / f"{stem}-{self.digest[:20]}"
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self.loaded = self.saved = self.rejected = 0  # counters, for logs and tests

    def path(self, name: str) -> Path:
        """The file that holds `name`'s embedding (named by its sha256: any text is safe)."""
        return self.folder / f"{hashlib.sha256(name.encode()).hexdigest()[:40]}.emb"

    def _once(self, what: str) -> bool:
        """True the first time `what` is reported by this store."""
        with self._lock:
            first = what not in self._warned
            self._warned.add(what)
            return first

    def _warn(self, path: Path, why: str) -> None:
        with self._lock:
            self.rejected += 1
        if self._once(str(path)):
            log.warning("text cache: ignoring %s (%s); it is encoded again and rewritten",
                        path, why)

    def _read(self, name: str) -> np.ndarray | None:
        path = self.path(name)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._warn(path, f"unreadable: {exc}")
            return None
        why = None
        values = None
        try:
            if not data.startswith(MAGIC):
                raise ValueError("not a text-embedding file")
            (length,) = _HEADER.unpack_from(data, len(MAGIC))
            start = len(MAGIC) + _HEADER.size
            if length > _MAX_HEADER or start + length > len(data):
                raise ValueError("truncated header")
            header = json.loads(data[start:start + length])
            body = data[start + length:]
            if header.get("key") != self.digest:
                why = "written for other weights, templates or versions"
            elif header.get("name") != name:
                why = f"it holds {str(header.get('name'))[:60]!r}, not {name[:60]!r}"
            elif len(body) != 4 * int(header.get("dim", -1)):
                why = f"{len(body)} bytes of numbers, the header says {header.get('dim')} values"
            elif hashlib.sha256(body).hexdigest() != header.get("sha256"):
                why = "its numbers do not match their sha256 (corrupt)"
            else:
                values = np.frombuffer(body, dtype="<f4").copy()
        except (ValueError, struct.error, TypeError, AttributeError) as exc:
            why = f"unreadable: {exc}"
        if why is not None:
            self._warn(path, why)
            return None
        return values

    def load(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """{name: (D,) float32 CPU tensor} for the names whose file is valid."""
        found = {}
        for name in names:
            values = self._read(name)
            if values is not None:
                found[name] = torch.from_numpy(values)
        with self._lock:
            self.loaded += len(found)
        return found

    def save(self, names: Sequence[str], embeddings: torch.Tensor) -> int:
        """Write one file per name (embeddings (N, D)); how many were written. A folder that
        cannot be written is reported once and otherwise ignored."""
        rows = embeddings.detach().float().cpu().numpy().astype("<f4")
        written = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for name, row in zip(names, rows, strict=True):
                body = row.tobytes()
                header = json.dumps({"key": self.digest, "name": name, "dim": int(row.shape[0]),
                                     "sha256": hashlib.sha256(body).hexdigest()}).encode()
                fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".part-")
                try:
                    with os.fdopen(fd, "wb") as out:
                        out.write(MAGIC + _HEADER.pack(len(header)) + header + body)
                    os.replace(tmp, self.path(name))
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                written += 1
        except OSError as exc:
            if self._once("write"):
                log.warning("text cache: cannot write to %s (%s); text embeddings are kept in "
                            "memory only", self.folder, exc)
        with self._lock:
            self.saved += written
        return written

    def write_key(self) -> None:
        """A readable copy of the key beside the files (for people; never read back)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / "key.json"
            if not target.exists():
                fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".key-")
                with os.fdopen(fd, "w") as out:
                    json.dump(self.key, out, indent=1, sort_keys=True)
                os.replace(tmp, target)
        except OSError:
            pass
