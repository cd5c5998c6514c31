"""Static checks over every module of ovseg_ros (AST, not grep: comments and strings never
match, aliases do): checkpoints are data, never code; no shell; network access in one place.

A new subprocess or download call fails here until it is reviewed and listed below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ovseg_ros"

# (file relative to ovseg_ros/, enclosing function): reviewed call sites.
SUBPROCESS_ALLOWED = {
    # `git rev-parse` / `git status` on the package's own checkout for the benchmark report:
    # argv list, constant program, the only variable is a path derived from __file__.
    ("bench/timing.py", "git_commit"),
    # The node benchmark's camera: sys.executable -m ovseg_ros.bench.camera with a size, a
    # rate and a constant topic, all from the benchmark's own options.
    ("bench/node_bench.py", "bench_node"),
    # The command-line benchmark: sys.executable -m ovseg_ros.bench.cli_bench with the model and
    # `ovseg segment` options it was given, on frames and a cache folder it made itself.
    ("bench/cli_bench.py", "_run_ovseg"),
    # The reproducibility costs: sys.executable -c with a constant program, the model name,
    # frame size and repetitions it was given and a cache folder it made itself; MKL_CBWR set
    # to one of two constants in the child's environment.
    ("bench/reproducible_bench.py", "_frame_times"),
    # The A/B against an earlier revision: `git worktree add/remove` (constant program) of the
    # revision it was given into a temporary folder it made itself, and sys.executable -m
    # ovseg_ros.bench.cli_bench there with `ovseg segment` options it built.
    ("bench/revision_ab.py", "_worktree"),
    ("bench/revision_ab.py", "_segment"),
    ("bench/revision_ab.py", "bench_revision_ab"),
    # The memory soak's node: sys.executable -m ovseg_ros.bench.soak --node, then ROS
    # arguments built from the soak's own options.
    ("bench/soak.py", "soak"),
    # The load-memory benchmark: sys.executable -m ovseg_ros.bench.memory with a temporary
    # weights path it wrote itself, then the model/device/precision/size it was given.
    ("bench/memory.py", "bench_load_memory"),
    # The lifecycle-memory benchmark: sys.executable -m ovseg_ros.bench.lifecycle with the
    # model/device/precision/size/frame count it was given (a fresh process for clean RSS).
    ("bench/lifecycle.py", "bench_lifecycle_memory"),
    # The ONNX export benchmark: sys.executable -m ovseg_ros.bench.backends with the model name
    # it was given and a temporary cache folder it made itself.
    ("bench/backends.py", "bench_export"),
    # The shared-CPU case: sys.executable -c with a constant spin loop and a float deadline
    # (the child ends by itself); killed and reaped by its PID when the block ends.
    ("bench/shared_cpu.py", "cpu_hog"),
    # The storm benchmark's node: sys.executable -c with a constant program (an optional tiny
    # model registration by its name), then ROS arguments from the benchmark's own parameters;
    # its clients: sys.executable -m ovseg_ros.bench.storm_clients with the node's namespace,
    # a constant kind, counts and durations. All argv lists, ended by their PIDs.
    ("bench/storms.py", "__enter__"),
    ("bench/storms.py", "clients"),
    # The console's benchmark and tests: sys.executable -m ovseg_ros.cli.entry console with a
    # node name and options from the caller, on a free loopback port; ended by its PID.
    ("bench/browser.py", "__init__"),
}
NETWORK_ALLOWED = {("core/weights.py", "fetch")}  # https only, atomic rename: test_weights.py
FORBIDDEN_CALLS = {"os.system", "os.popen", "os.execv", "os.execvp", "os.execl", "os.spawnl",
                   "os.spawnv", "subprocess.getoutput", "subprocess.getstatusoutput",
                   "pickle.load", "pickle.loads", "marshal.loads", "yaml.load", "eval", "exec"}
SUBPROCESS = {"subprocess.run", "subprocess.call", "subprocess.check_call",
              "subprocess.check_output", "subprocess.Popen"}
NETWORK = {"urllib.request.urlopen", "urllib.request.urlretrieve", "requests.get",
           "http.client.HTTPSConnection", "http.client.HTTPConnection", "socket.socket"}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, from the module's imports (`import torch as t`, ...)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(
                    ".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(expr: ast.expr, aliases: dict[str, str]) -> str:
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return ""
    return ".".join([aliases.get(expr.id, expr.id)] + parts[::-1])


def _visit(node: ast.AST, rel: str, func: str, aliases: dict[str, str]
           ) -> Iterator[tuple[str, str, ast.Call, str]]:
    for child in ast.iter_child_nodes(node):
        name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
        if isinstance(child, ast.Call):
            yield rel, name, child, _dotted(child.func, aliases)
        yield from _visit(child, rel, name, aliases)


def calls() -> Iterator[tuple[str, str, ast.Call, str]]:
    """(file, enclosing function, call node, dotted callee) for every call in ovseg_ros."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        yield from _visit(tree, path.relative_to(PACKAGE).as_posix(), "<module>", _aliases(tree))


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_the_scan_sees_the_calls_it_must_check():
    found = {callee for _, _, _, callee in calls()}
    assert "torch.load" in found and "urllib.request.urlopen" in found  # else it checks nothing
    assert sum(1 for _ in calls()) > 500


def test_every_torch_load_passes_weights_only_true():
    loads = [(f, fn, c) for f, fn, c, callee in calls() if callee == "torch.load"]
    assert loads
    for f, fn, call in loads:
        value = _kw(call, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, \
            f"{f}:{call.lineno} ({fn}): torch.load without weights_only=True runs pickled code"


def test_no_shell_and_no_unreviewed_subprocess():
    for f, fn, call, callee in calls():
        where = f"{f}:{call.lineno} ({fn})"
        assert callee not in FORBIDDEN_CALLS, f"{where}: {callee}"
        shell = _kw(call, "shell")
        assert shell is None or (isinstance(shell, ast.Constant) and not shell.value), \
            f"{where}: shell=True"
        if callee in SUBPROCESS:
            assert (f, fn) in SUBPROCESS_ALLOWED, f"{where}: unreviewed {callee}"
            argv = call.args[0] if call.args else _kw(call, "args")
            assert isinstance(argv, (ast.List, ast.Tuple)), f"{where}: argv must be a list"
            program = argv.elts[0]
            assert isinstance(program, ast.Constant) or ast.unparse(program) == \
                "sys.executable", f"{where}: the program must be fixed"


def test_network_access_only_in_the_reviewed_downloader():
    for f, fn, call, callee in calls():
        if callee in NETWORK:
            assert (f, fn) in NETWORK_ALLOWED, f"{f}:{call.lineno} ({fn}): {callee}"
