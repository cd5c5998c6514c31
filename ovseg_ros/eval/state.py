"""What makes an evaluation resumable: the run's settings and every finished image's
confusion matrix, kept under <output>/state/.

run.json holds the settings that decide the numbers (dataset, class names, protocol, model and
weight hashes, precision, device type, ...) and the software environments the run has seen.
progress.jsonl holds one line per finished image, {"id": ..., "cm": [[row, col, count], ...]},
flushed as each image finishes, so an interrupted run loses at most the image in flight (an
image recorded twice counts once, with its last matrix). A run
with other settings is refused rather than mixed into the stored matrices.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from .metrics import from_sparse, to_sparse

log = logging.getLogger(__name__)


class ResumeError(ValueError):
    """The output folder holds a run with other settings, or a corrupt state."""


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _differences(old: dict, new: dict) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


class RunState:
    """The stored progress of one evaluation run in `folder`."""

    FSYNC_EVERY = 20  # lines; flushes happen on every line

    def __init__(self, folder: Path, settings: dict, environment: dict, num_classes: int):
        self.folder = Path(folder)
        self.num_classes = num_classes
        self.folder.mkdir(parents=True, exist_ok=True)
        self.environments = self._check_settings(settings, environment)
        # Sparse cells in memory: dense (C, C + 1) matrices of 5000 COCO-Stuff images would
        # take over a gigabyte.
        self.done: dict[str, list[list[int]]] = self._load_progress()
        self._file = (self.folder / "progress.jsonl").open("a", encoding="utf-8")
        self._unsynced = 0

    def _check_settings(self, settings: dict, environment: dict) -> list[dict]:
        path = self.folder / "run.json"
        # A JSON round trip makes tuples lists, as they come back from the file.
        settings = json.loads(json.dumps(settings))
        environment = json.loads(json.dumps(environment))
        environments = [environment]
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
                old, environments = stored["settings"], stored["environments"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ResumeError(f"{path} is corrupt ({exc}); delete {self.folder} to start "
                                  "this evaluation again") from exc
            changed = _differences(old, settings)
            if changed:
                raise ResumeError(
                    f"{self.folder.parent} holds an evaluation with other settings; resuming "
                    f"would mix results. Changed: {'; '.join(changed)}. Use another --output, or "
                    f"delete {self.folder} to start again.")
            if environment not in environments:
                log.warning("resuming under another software environment than before: %s",
                            "; ".join(_differences(environments[-1], environment)))
                environments.append(environment)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"settings": settings, "environments": environments},
                                  indent=2))
        os.replace(tmp, path)
        return environments

    def _load_progress(self) -> dict[str, list[list[int]]]:
        path = self.folder / "progress.jsonl"
        if not path.is_file():
            return {}
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):  # the line being written when the run stopped
            data = data[: data.rfind(b"\n") + 1]
            path.write_bytes(data)
        done: dict[str, list[list[int]]] = {}
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
                from_sparse(entry["cm"], self.num_classes)  # checks the cells fit
                done[entry["id"]] = entry["cm"]
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise ResumeError(f"{path}:{number} is corrupt ({exc}); delete {self.folder} to "
                                  "start this evaluation again") from exc
        return done

    def record(self, image_id: str, matrix: np.ndarray) -> None:
        """Store one finished image's confusion matrix (C, C + 1)."""
        cells = to_sparse(matrix)
        self._file.write(json.dumps({"id": image_id, "cm": cells}) + "\n")
        self._file.flush()
        self.done[image_id] = cells
        self._unsynced += 1
        if self._unsynced >= self.FSYNC_EVERY:
            os.fsync(self._file.fileno())
            self._unsynced = 0

    def total(self, ids: list[str]) -> np.ndarray:
        """The summed confusion matrix of the finished images among `ids`."""
        cells = [c for i in ids if i in self.done for c in self.done[i]]
        return from_sparse(cells, self.num_classes)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
