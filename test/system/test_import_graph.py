"""The package's import graph has no cycles, and its folders form layers: every module of
ovseg_ros, with the imports made inside functions counted too (a lazy import only hides a cycle
until the call). Read from the sources (AST), so nothing is imported and the check is
independent of what is installed."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ovseg_ros"
# The folders of ovseg_ros, bottom first: a module imports its own folder's modules and those
# of folders in lower layers, never higher or beside it (node and bag are independent). The
# package's own __init__ is below everything.
LAYERS = (("core",), ("viz",), ("io",), ("geometry",), ("objects",), ("settings",), ("frame",),
          ("node", "bag"), ("eval",), ("cli",), ("bench",))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The ovseg_ros modules `path` imports (a `from pkg import sub` names the submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in modules and t != name)
    return out


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(edges):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(edges[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


def folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) \
        else ""


def layer_of(name: str) -> int:
    """The layer index of a folder ("" = the package itself, below all)."""
    if not name:
        return -1
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"folder ovseg_ros/{name}/ is in no layer: add it to LAYERS")


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for a, targets in sorted(edges.items()):
        for b in sorted(targets):
            fa, fb = folder(a), folder(b)
            if fa != fb and layer_of(fb) >= layer_of(fa):
                out.append(f"{a} -> {b}")
    return out


def test_every_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == {n for names in LAYERS for n in names}


def test_the_layer_check_finds_an_upward_import():
    assert layer_violations({"ovseg_ros.core.x": {"ovseg_ros.node.y"}}) == [
        "ovseg_ros.core.x -> ovseg_ros.node.y"]
    assert layer_violations({"ovseg_ros.node.a": {"ovseg_ros.bag.b"}}) != []  # beside
    assert layer_violations({"ovseg_ros.node.a": {"ovseg_ros.frame.b", "ovseg_ros.node.c"}}) \
        == []


def test_folders_form_layers():
    """Folder by folder, no import goes up or sideways (lazy imports included)."""
    bad = layer_violations(graph())
    assert not bad, "imports against the layers (LAYERS):\n" + "\n".join(bad)


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_lazy_and_relative_imports():
    edges = graph()
    # eval/cli.py imports the option helpers inside a function, and its runner relatively
    assert "ovseg_ros.settings.options" in edges["ovseg_ros.eval.cli"]
    assert "ovseg_ros.eval.protocol" in edges["ovseg_ros.eval.cli"]


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_test_module_imports_another():
    """Shared test code lives in test/helpers/ (or conftest fixtures), never in a test module:
    importing one test module from another runs its tests' module code twice and hides where
    a helper lives."""
    tests = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(tests)}: {n}" for n in names
                          if n.split(".")[-1].startswith("test_")]
    assert not offenders, offenders
