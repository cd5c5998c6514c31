"""Package exports loaded on first use, so that importing a package (for its settings schema or
one light module) does not import torch, OpenCV or scipy."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: name -> the attribute of its submodule
    `exports[name]`, imported on first use and kept in `namespace` (the package's globals), so
    later lookups skip it."""
    def lookup(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value
    return lookup
