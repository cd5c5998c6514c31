"""The package's own code compiles on every Python it supports (3.10: Humble's system Python,
3.12: Jazzy's; the venvs run 3.11), and ruff lints it as 3.10 code.

Each interpreter found (pyenv's versions, then python3.X on PATH) byte-compiles every .py file
of the repository with warnings as errors (3.12 turns bad escapes into SyntaxWarnings), in
memory: nothing is written. An interpreter that is missing is a skip with the reason, except
under CI (CI=true), where the machine is known to have all three and a missing one fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.10", "3.11", "3.12")
SOURCES = ("ovseg_ros", "test", "launch", "scripts", "setup.py")
COMPILE = r"""
import sys, warnings
from pathlib import Path
warnings.simplefilter("error")
root, failed, count = Path(sys.argv[1]), [], 0
for top in sys.argv[2:]:
    paths = [root / top] if top.endswith(".py") else sorted((root / top).rglob("*.py"))
    for path in paths:
        count += 1
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
        except (SyntaxError, Warning) as exc:
            failed.append(f"{path.relative_to(root)}: {type(exc).__name__}: {exc}")
print(f"{sys.version.split()[0]}: {count} files")
print("\n".join(failed))
sys.exit(1 if failed or not count else 0)
"""


def interpreter(version: str) -> str | None:
    """A python of `version` (major.minor) on this machine, or None."""
    candidates = []
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    for exe in candidates:
        try:
            out = subprocess.run([str(exe), "-c", "import sys; print(*sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.split() == version.split("."):
            return str(exe)
    return None


@pytest.mark.parametrize("version", VERSIONS)
def test_sources_compile_on(version):
    exe = interpreter(version)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI: no Python {version} found (pyenv or python{version} on PATH)")
        pytest.skip(f"no Python {version} on this machine")
    out = subprocess.run([exe, "-c", COMPILE, str(ROOT), *SOURCES], capture_output=True,
                         text=True, timeout=300)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert int(out.stdout.split(": ")[1].split()[0]) > 50  # it really read the tree


def test_ruff_targets_the_oldest_supported_python():
    # tomllib is 3.11+: read the one line (pyproject has a single target-version, [tool.ruff]'s)
    targets = re.findall(r'^target-version\s*=\s*"(\w+)"', (ROOT / "pyproject.toml").read_text(),
                         re.M)
    assert targets == ["py310"]
    assert VERSIONS[0] == "3.10"
