"""`backend: auto` / `precision: auto` on the CPU decided by measurement, not by CPU flags.

The same CPU flags meant opposite things on different machines (torch bf16 several times faster
than fp32 on one AVX512-BF16 CPU, slower on another: doc/performance.md). So `auto` times
each allowed candidate (backend, precision) on the actual dense encoder at the configured input
size and threads, picks the fastest, and caches the decision keyed by everything that decides
it (`probe_key`): the next start reuses it without probing; a changed key probes again.

`measure` and `decide` take the candidates' forwards from a `prepare(candidate)` callable and
time them with `clock`: the Segmenter hands in the real encoders (core/backends/auto.py), tests
hand in fakes with known costs. Pure logic here: no torch, no onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import PROBE_MODES

log = logging.getLogger(__name__)

# Bump when what a cached decision means changes (candidates' definition, the timing rule).
FORMAT = 3  # 3: the CPU's family, model number and stepping in the key


@dataclass(frozen=True)
class Candidate:
    """One way to run the dense encoder."""

    backend: str  # "torch" | "onnxruntime"
    precision: str  # "fp32" | "bf16" | "fp16" | "int8"

    @property
    def name(self) -> str:
        return f"{self.backend} {self.precision}"

    @property
    def exact(self) -> bool:
        return self.precision == "fp32"


def candidates(backend: str, precision: str, *, onnx: bool, native_bf16: bool,
               native_fp16: bool, int8: bool) -> list[Candidate]:
    """What `auto` may choose from, for a requested backend/precision (one of them auto) on
    the CPU. The exact ones first (fp32 torch, then onnxruntime), then bf16/fp16 where the CPU
    runs them natively (torch only), then int8 (onnxruntime only) when `int8` opts in.

    onnx: onnxruntime is installed. A single candidate means there is nothing to measure.
    """
    backends = ["torch", "onnxruntime"] if backend == "auto" else [backend]
    if not onnx:
        backends = [b for b in backends if b != "onnxruntime"]
    if precision == "auto":
        precisions = (["fp32"] + (["bf16"] if native_bf16 else [])
                      + (["fp16"] if native_fp16 else []) + (["int8"] if int8 else []))
    else:
        precisions = [precision]
    runs = {"torch": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32", "int8")}
    return [Candidate(b, p) for p in precisions for b in backends if p in runs[b]]


@dataclass
class ProbeResult:
    """The decision and what it rests on (times in ms: each candidate's best pass)."""

    choice: Candidate
    times_ms: dict[str, float]
    passes: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    probe_s: float = 0.0  # time spent in timed passes (preparation excluded)
    budget_s: float = 0.0
    cached: bool = False  # True when read from the cache (no probe this start)
    when: str = ""

    @property
    def reason(self) -> str:
        """One line: the choice, against the runner-up, and where it comes from."""
        best = self.times_ms[self.choice.name]
        others = sorted((t, n) for n, t in self.times_ms.items() if n != self.choice.name)
        versus = (f", {others[0][0] / best:.2f}x faster than {others[0][1]} "
                  f"({others[0][0]:.0f} ms)" if others else "")
        source = (f"cached probe of {self.when}" if self.cached
                  else f"probed now in {self.probe_s:.1f} s")
        return f"{self.choice.name}: fastest measured, {best:.0f} ms{versus} ({source})"

    def table(self) -> str:
        """The probe's table, one candidate per line, fastest first."""
        rows = [f"  {name:<18} {t:8.0f} ms  ({self.passes.get(name, 2)} passes)"
                + ("  <- chosen" if name == self.choice.name else "")
                for name, t in sorted(self.times_ms.items(), key=lambda kv: kv[1])]
        rows += [f"  {name:<18}   failed: {why}" for name, why in self.failed.items()]
        return "\n".join(rows)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["choice"] = asdict(self.choice)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProbeResult:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["choice"] = Candidate(**data["choice"])
        return cls(**fields)


Forward = Callable[[], object]
Prepare = Callable[[Candidate], Forward]


def measure(options: Iterable[Candidate], prepare: Prepare, budget_s: float, reps: int = 3,
            clock: Callable[[], float] = time.perf_counter) -> ProbeResult | None:
    """Time each candidate's forward and pick the fastest (None when none could run).

    prepare(candidate) builds its forward (an export, a session, a bf16 copy: not counted).
    Every candidate then gets a warm-up pass and one timed pass, whatever the budget: a first
    pass carries one-time costs (kernel selection, allocation; 3.8x the steady time for torch
    fp32 on a loaded 2-core machine), so a candidate judged on it alone would lose unfairly.
    Up to `reps - 1` more interleaved rounds follow (load drifts hit all alike), each pass
    started only if its expected end (the candidate's last pass) stays within `budget_s`
    since the first pass. So the probe takes at most max(budget_s, two passes per candidate).
    A candidate's time is its best timed pass. One whose preparation or pass raises is
    dropped with one warning; the rest go on.
    """
    result = ProbeResult(choice=Candidate("torch", "fp32"), times_ms={}, budget_s=budget_s)
    forwards: dict[Candidate, Forward] = {}
    last: dict[Candidate, float] = {}
    best: dict[Candidate, float] = {}
    spent = 0.0

    def attempt(c: Candidate, what: str, fn: Callable[[], object]) -> float | None:
        nonlocal spent
        t0 = clock()
        try:
            fn()
        except Exception as exc:  # a missing backend, a crash: the next candidate runs
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("backend auto: %s could not run (%s: %s); trying the others",
                        c.name, what, why)
            result.failed[c.name] = why
            forwards.pop(c, None)
            best.pop(c, None)
            return None
        seconds = clock() - t0
        if what != "prepare":
            spent += seconds
            result.passes[c.name] = result.passes.get(c.name, 0) + 1
        return seconds

    for c in options:
        box: list[Forward] = []
        if attempt(c, "prepare", lambda c=c, box=box: box.append(prepare(c))) is None:
            continue
        forwards[c] = box[0]
        for what in ("warm-up pass", "timed pass"):
            seconds = attempt(c, what, forwards[c]) if c in forwards else None
            if seconds is not None:
                last[c] = seconds
                best[c] = seconds if what == "timed pass" else float("inf")
    for _ in range(reps - 1):
        for c in list(forwards):
            if spent + last[c] > budget_s:
                continue
            seconds = attempt(c, "timed pass", forwards[c])
            if seconds is not None:
                last[c] = seconds
                best[c] = min(best[c], seconds)
    scores = {c: best[c] for c in forwards if c in best}
    if not scores:
        return None
    result.choice = min(scores, key=lambda c: scores[c])
    result.times_ms = {c.name: s * 1e3 for c, s in scores.items()}
    result.passes = {n: k for n, k in result.passes.items() if n in result.times_ms}
    result.probe_s = spent
    result.when = time.strftime("%Y-%m-%d %H:%M:%S")
    return result


# ---- the cache ------------------------------------------------------------------------------

def _cpu_fields() -> dict[str, Any]:
    """The CPU as the key sees it. The model name alone is not enough: virtual machines report
    "AMD EPYC" for Zen 4 and Zen 5 alike, whose bf16 and int8 speeds differ 2x; family, model
    number and stepping tell them apart."""
    model, flags = platform.processor() or platform.machine(), ""
    numbers: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine()):
                model = value.strip()
            elif key in ("cpu family", "model", "stepping", "CPU implementer", "CPU part",
                         "CPU variant") and key not in numbers:
                numbers[key] = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    if numbers:
        model += " (" + ", ".join(f"{k} {v}" for k, v in numbers.items()) + ")"
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    return {"cpu_model": model, "cpu_flags": flags, "cpu_count": os.cpu_count() or 0,
            "cpus_usable": usable}


def probe_key(model: str, input_hw: tuple[int, int], threads: int,
              options: Iterable[Candidate], versions: Mapping[str, str],
              **extra: Any) -> dict[str, Any]:
    """Everything that decides which candidate is fastest: the CPU (model, flags, cores), the
    threads, the library versions, the model and input size, and the candidates allowed."""
    return {"format": FORMAT, **_cpu_fields(), "threads": threads, "versions": dict(versions),
            "model": model, "input_hw": list(input_hw),
            "candidates": sorted(c.name for c in options), **extra}


def _path(folder: Path, key: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return folder / f"auto-{digest}.json"


def load(folder: Path, key: Mapping[str, Any]) -> ProbeResult | None:
    """The cached decision for `key`, or None (missing, unreadable or written for another key)."""
    path = _path(folder, key)
    try:
        data = json.loads(path.read_text())
        if data.get("key") != json.loads(json.dumps(key)):
            return None
        result = ProbeResult.from_json(data["result"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("backend auto: ignoring the unreadable probe cache %s (%s)", path, exc)
        return None
    result.cached = True
    return result


def save(folder: Path, key: Mapping[str, Any], result: ProbeResult) -> Path:
    """Write the decision atomically (a temporary file renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = _path(folder, key)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".auto-")
    with os.fdopen(fd, "w") as f:
        json.dump({"key": key, "result": {**result.to_json(), "cached": False}}, f, indent=1,
                  sort_keys=True)
    os.replace(tmp, path)
    return path


def decide(options: list[Candidate], prepare: Prepare, key: Mapping[str, Any],
           folder: Path | None, mode: str = "cached", budget_s: float = 6.0, reps: int = 3,
           clock: Callable[[], float] = time.perf_counter) -> ProbeResult | None:
    """The cached decision for `key` (mode "cached"), else a new probe, saved when `folder`.

    mode "always" probes and overwrites the cache. None when no candidate could run.
    """
    if mode not in PROBE_MODES[:2]:
        raise ValueError(f"probe mode {mode!r}: use cached or always here")
    names = {c.name for c in options}
    if mode == "cached" and folder is not None:
        cached = load(folder, key)
        if cached is not None and cached.choice.name in names:
            log.info("backend auto: %s", cached.reason)
            return cached
    result = measure(options, prepare, budget_s, reps, clock)
    if result is None:
        return None
    log.info("backend auto: probe of the %s (%s, %s threads):\n%s",
             key.get("part", "dense encoder"), "x".join(map(str, key.get("input_hw", ()))),
             key.get("threads"), result.table())
    if folder is not None:
        try:
            save(folder, key, result)
        except OSError as exc:
            log.warning("backend auto: could not cache the decision in %s (%s)", folder, exc)
    return result
