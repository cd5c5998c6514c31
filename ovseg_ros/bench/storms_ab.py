"""The `storms_ab` section (opt-in): the storms of storms.py on two variants of the node, phase
by phase in turn, so that both meet the same load on a shared machine.

Both node processes run for the whole section; only the one being measured gets camera frames
(the other's camera pauses, so it idles). Each phase runs on A then B, or B then A, the order
alternating from phase to phase, so a load that changes over the run weighs on both alike.
The variants are parameter sets over the same code: `limits` (the defaults) against
`no_limits` (request_rate_hz 0: requests taken as fast as they come, set_prompts_rate_hz 0).
A variant's `source_dir` (not a parameter) runs its node from another source tree, e.g. a
checkout of the code before a change (StormRig's source_dir).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .storms import CLIENT_TIMEOUT_S, IMPOLITE, QUIET_S, STORMS, StormRig

VARIANTS = {"limits": {}, "no_limits": {"request_rate_hz": 0.0, "set_prompts_rate_hz": 0.0}}


def bench_storms_ab(params: Mapping[str, Any], register: str = "", quiet_s: float = QUIET_S,
                    storms: Mapping[str, tuple[int, float]] = STORMS,
                    impolite: Mapping[str, tuple[int, float]] = IMPOLITE,
                    variants: Mapping[str, Mapping[str, Any]] = VARIANTS,
                    size: tuple[int, int] = (240, 320)) -> dict[str, Any]:
    """Per variant: the phases of storms.bench_storms; see the module docstring."""
    names = list(variants)
    plan = ([("quiet", "probe", 0, quiet_s, True)]
            + [(k, k, t, s, True) for k, (t, s) in storms.items()]
            + [(f"{k}_impolite", k, t, s, False) for k, (t, s) in impolite.items()]
            + [("quiet_after", "probe", 0, quiet_s, True)])
    rigs: dict[str, StormRig] = {}
    phases: dict[str, dict[str, Any]] = {n: {} for n in names}
    order: list[str] = []
    try:
        for name in names:
            overrides = dict(variants[name])
            source = overrides.pop("source_dir", None)
            rig = StormRig({**params, **overrides}, ns=f"/storm_{name}", size=size,
                           register=register, source_dir=source)
            rigs[name] = rig.__enter__()
            rig.warm_up()
            rig.camera_on.clear()
        for k, (phase, kind, threads, seconds, polite) in enumerate(plan):
            for name in (names if k % 2 == 0 else names[::-1]):
                print(f"  [{phase} on {name}]", flush=True)
                rig = rigs[name]
                rig.camera_on.set()
                phases[name][phase] = rig.phase(kind, threads, seconds, polite=polite)
                rig.camera_on.clear()
                order.append(f"{phase}:{name}")
        configured = {n: next((ln for ln in r.lines if "configured:" in ln), "")
                      for n, r in rigs.items()}
    finally:
        for rig in rigs.values():
            rig.close()
    out: dict[str, Any] = {"params": dict(params), "camera_hz": 5.0,
                           "camera_size": [size[1], size[0]],
                           "client_timeout_s": CLIENT_TIMEOUT_S, "order": order,
                           "variants": {}}
    for name in names:
        quiet = phases[name]["quiet"]["frames_per_s"]
        for report in phases[name].values():
            report["frames_vs_quiet"] = (report["frames_per_s"] / quiet if quiet
                                         else float("nan"))
        out["variants"][name] = {"overrides": dict(variants[name]), "phases": phases[name],
                                 "node_configured": configured[name].split("]: ", 1)[-1]}
    return out


def table_ab(results: Mapping[str, Any]) -> str:
    """Frames, CPU and requests of each variant side by side, one row per phase."""
    names = list(results["variants"])
    head = " | ".join(f"{n}: frames/s (vs quiet), frames per node CPU s, node / clients CPU "
                      "cores, requests ok / refused / lost" for n in names)
    rows = [f"| phase | {head} |", "| --- |" + " --- |" * len(names)]
    phases = results["variants"][names[0]]["phases"]
    for phase in phases:
        cells = []
        for name in names:
            ph = results["variants"][name]["phases"][phase]
            svc = ph["services"]
            storm = next((v for k, v in svc.items() if k not in ("get_state", "get_prompts")),
                         None)
            counts = f"{storm['ok']} / {storm['refused']} / {storm['lost']}" if storm else "-"
            cells.append(f"{ph['frames_per_s']:.2f} ({ph['frames_vs_quiet']:.2f}x), "
                         f"{ph['frames_per_node_cpu_s']:.2f}, {ph['node_cpu_cores']:.2f} / "
                         f"{ph['clients_cpu_cores']:.2f}, {counts}")
        rows.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
