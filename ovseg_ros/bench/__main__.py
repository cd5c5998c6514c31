"""`python -m ovseg_ros.bench`: per-stage timings and same-run ratios; see doc/performance.md.

Weights are seeded random (real architecture): timing does not depend on weight values.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ovseg_ros.core import Segmenter, SegmenterConfig
from ovseg_ros.core.settings import settings_of
from ovseg_ros.core.tiny import CONFIGS, register_tiny
from ovseg_ros.settings.options import add_setting_options

from . import report, sections
from .backends import bench_backends
from .lifecycle import bench_lifecycle_memory
from .memory import bench_load_memory, bench_memory
from .points import bench_points
from .timing import machine_header, matmul_gflops, peak_rss_mb

SECTIONS = ("core", "points", "vocab", "query", "objects", "tracking", "clipdiy", "backends",
            "cli", "cli_vocab", "node", "storms", "bag", "memory", "lifecycle")
# Run only when named in --only (console: needs Chromium, scripts/test_browser.sh).
OPT_IN = ("compile", "attention", "cli_ab", "reproducible", "console",
          "storms_ab")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'640x480,1280x720' (W x H) -> [(480, 640), (720, 1280)] as (H, W)."""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        w, h = (int(v) for v in item.lower().split("x"))
        out.append((h, w))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ovseg_ros.bench", description=__doc__)
    p.add_argument("--smoke", action="store_true",
                   help="tiny model, tiny images, 2 repetitions, every section (CI)")
    p.add_argument("--out", type=Path, help="write the results JSON here")
    p.add_argument("--markdown", type=Path, help="write a markdown table here (doc/benchmarks/)")
    p.add_argument("--compare", type=Path, help="print new/old per stage against this JSON")
    p.add_argument("--sizes", default="448x448,640x480", help="core sizes, W x H")
    p.add_argument("--node-sizes", default="640x480,1280x720",
                   help="camera sizes (node and points sections), W x H")
    add_setting_options(p, [s for s in settings_of(SegmenterConfig)
                            if s.name in ("model", "device", "precision", "backend", "threads",
                                          "input_size")])
    p.add_argument("--reps", type=int, default=10, help="repetitions per variant")
    p.add_argument("--node-duration", type=float, default=20.0, help="seconds per node run")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma list of sections; also opt-in: " + ", ".join(OPT_IN))
    p.add_argument("--no-plain", action="store_true", help="skip the plain fp32 baselines")
    p.add_argument("--against", default="b0db3ff",
                   help="cli_ab: the git revision `ovseg segment` is compared with")
    p.add_argument("--tracking-frames", type=int, default=300,
                   help="frames per generated sequence of the tracking section")
    return p


def run(args: argparse.Namespace, command: str = "") -> dict[str, Any]:
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS) - set(OPT_IN)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model, sizes, node_sizes = args.model, parse_sizes(args.sizes), parse_sizes(args.node_sizes)
    reps, duration, warmup, batches = args.reps, args.node_duration, 5.0, (1, 2, 4)
    if args.smoke:
        model, sizes, node_sizes = register_tiny(), [(48, 64)], [(48, 64)]
        reps, duration, warmup, batches = 2, 1.5, 1.0, (1, 2)
    elif model in CONFIGS:  # a tiny test model named with --model
        register_tiny(name=model)
    cfg = SegmenterConfig(model=model, clip_weights="random", heads="random",
                          device=args.device, precision=args.precision, profile=True,
                          backend=args.backend,
                          input_size=args.input_size if not args.smoke else 0)
    t0 = time.perf_counter()
    seg = Segmenter(cfg)
    load_s = time.perf_counter() - t0
    seg.set_prompts(sections.CLASSES[:20])
    rt = seg.runtime
    dtype_name = str(rt.dtype).replace("torch.", "")
    header = machine_header(rt.device, rt.dtype)
    header.update(model=model, weights="seeded random (timing does not depend on values)",
                  backend=rt.backend,
                  mode=cfg.mode, input_size=cfg.input_size, smoke=bool(args.smoke),
                  reps=reps, command=command, model_load_s=load_s,
                  matmul_gflops={"fp32": matmul_gflops(torch.float32, rt.device),
                                 dtype_name: matmul_gflops(rt.dtype, rt.device)})
    report.print_header(header)
    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rt.device)
    for size in sizes:  # the product's own footprint, before any baseline model copy exists
        seg.segment(sections.sample_images(size, 1)[0])
    results: dict[str, Any] = {"header": header, "sections": {}}
    out = results["sections"]
    mem = {"peak_rss_after_segment_mb": peak_rss_mb()}
    plain = None if args.no_plain else sections.make_plain(seg)
    if "core" in only:
        out["core"] = {}
        for i, size in enumerate(sizes):
            key = f"{size[1]}x{size[0]}"
            print(f"[core {key}]", flush=True)
            out["core"][key] = sections.bench_core(seg, plain, size, reps,
                                                   batches if i == 0 else ())
    if "points" in only:
        out["points"] = {}
        for size in node_sizes:
            key = f"{size[1]}x{size[0]}"
            print(f"[points {key}]", flush=True)
            out["points"][key] = bench_points(seg, size, reps)
    if "vocab" in only:
        print("[vocab]", flush=True)
        out["vocab"] = sections.bench_vocab(seg, plain.clip if plain else None, reps)
    if "query" in only:
        from .query_bench import bench_query

        size = next((s for s in sizes if s == (480, 640)), sizes[-1])
        print(f"[query {size[1]}x{size[0]}]", flush=True)
        out["query"] = bench_query(seg, size, reps)
        seg.set_prompts(sections.CLASSES[:20])
    if "objects" in only:
        from .objects_bench import bench_objects

        size = next((s for s in node_sizes if s == (480, 640)), node_sizes[0])
        print(f"[objects {size[1]}x{size[0]}]", flush=True)
        out["objects"] = bench_objects(seg, size, reps, prompts=20 if args.smoke else 250)
        seg.set_prompts(sections.CLASSES[:20])
    if "tracking" in only:
        from .tracking import bench_tracking

        print("[tracking]", flush=True)
        out["tracking"] = bench_tracking(frames=40 if args.smoke else args.tracking_frames,
                                         size=(240, 320) if args.smoke else (480, 640))
    if "clipdiy" in only:
        print("[clipdiy]", flush=True)
        diy_reps = 1 if args.smoke else max(2, reps // 3)
        out["clipdiy"] = sections.bench_clipdiy(seg, sizes[0], diy_reps, int(not args.smoke),
                                                plain.clip if plain else None)
    if "compile" in only:
        print("[compile]", flush=True)
        out["compile"] = sections.bench_compile(seg, sizes[0], reps)
    if "attention" in only:
        print("[attention]", flush=True)
        out["attention"] = sections.bench_attention(seg, sizes[0], reps)
    model_argv = ["--model", model, "--clip-weights", "random", "--heads", "random",
                  "--device", args.device, "--input-size", str(cfg.input_size)]
    if "cli" in only:
        from .cli_bench import VARIANTS, bench_cli

        print("[cli]", flush=True)
        out["cli"] = bench_cli(model, model_argv, plain, sizes[0],
                               frames=5 if args.smoke else max(8, reps + 3),
                               rounds=1 if args.smoke else 2,
                               variants=("defaults", "int8") if args.smoke else tuple(VARIANTS))
    if "cli_vocab" in only:
        from .cli_bench import bench_cli_vocabulary

        print("[cli_vocab]", flush=True)
        out["cli_vocab"] = bench_cli_vocabulary(
            model, model_argv, sizes[0], frames=5 if args.smoke else max(8, reps + 3),
            rounds=1 if args.smoke else 2, counts=(5, 20) if args.smoke else (5, 250))
    if "cli_ab" in only:
        from .revision_ab import bench_revision_ab

        print(f"[cli_ab against {args.against}]", flush=True)
        out["cli_ab"] = bench_revision_ab(args.against, model, model_argv, sizes[0],
                                          frames=5 if args.smoke else max(8, reps + 3),
                                          rounds=1 if args.smoke else 3)
    if "reproducible" in only:
        import tempfile

        from .reproducible_bench import bench_reproducible

        print("[reproducible]", flush=True)
        with tempfile.TemporaryDirectory(prefix="ovseg-repro-") as cache:
            out["reproducible"] = bench_reproducible(
                seg, model, sizes[0], reps, names=4 if args.smoke else 20,
                rounds=1 if args.smoke else 2, cache=cache)
    plain = None  # free the fp32 copy before the node runs
    if "backends" in only:
        print("[backends]", flush=True)
        out["backends"] = bench_backends(model, args.device, sizes[0], cfg.input_size, reps)
    if "node" in only:
        print("[node]", flush=True)
        out["node"] = run_node(args, model, cfg, node_sizes, duration, warmup)
    if "storms" in only:
        print("[storms]", flush=True)
        out["storms"] = run_storms(args, model, cfg)
    if "console" in only:
        print("[console]", flush=True)
        out["console"] = run_console(args, model, cfg, node_sizes[0])
    if "storms_ab" in only:
        print("[storms_ab]", flush=True)
        out["storms_ab"] = run_storms(args, model, cfg, ab=True)
    if "bag" in only:
        print("[bag]", flush=True)
        from .bag_bench import bench_bag

        model_argv = ["--model", model, "--clip-weights", "random", "--heads", "random",
                      "--device", args.device, "--precision", args.precision,
                      "--input-size", str(cfg.input_size)]
        out["bag"] = bench_bag(seg, node_sizes[0], 4 if args.smoke else max(4, reps),
                               model_argv, () if args.smoke else (1, 2))
        node_fps = out.get("node", {}).get(f"{node_sizes[0][1]}x{node_sizes[0][0]}", {})
        if isinstance(node_fps, dict) and "output_fps" in node_fps:
            out["bag"]["ratios"]["bag_fps_over_node_fps"] = (
                out["bag"]["batch1"]["frames_per_s"] / node_fps["output_fps"])
    if "memory" in only:
        print("[memory]", flush=True)
        out["memory"] = {**mem, **bench_memory(seg),
                         "load_from_file": bench_load_memory(model, args.device, args.precision,
                                                             cfg.input_size)}
    if "lifecycle" in only:
        print("[lifecycle]", flush=True)
        out["lifecycle"] = bench_lifecycle_memory(model, args.device, args.precision,
                                                  cfg.input_size, 3 if args.smoke else 20)
    for name, value in (("fp32", matmul_gflops(torch.float32, rt.device)),
                        (dtype_name, matmul_gflops(rt.dtype, rt.device))):
        header["matmul_gflops"][name] = max(header["matmul_gflops"][name], value)  # best of 2
    header["loadavg_end"] = list(os.getloadavg())
    header["bench_wall_s"] = time.perf_counter() - t0
    return results


def run_node(args: argparse.Namespace, model: str, cfg: SegmenterConfig,
             sizes: list[tuple[int, int]], duration: float, warmup: float) -> dict[str, Any]:
    try:
        from .node_bench import bench_node

        params = {"model": model, "clip_weights": "random", "heads": "random",
                  "device": cfg.device, "precision": cfg.precision,
                  "input_size": cfg.input_size}
        return bench_node(params, sizes, duration, warmup, overlay_size=sizes[0],
                          thread_windows=1 if args.smoke else 2)
    except ImportError as exc:  # rclpy or the generated messages are missing
        return {"skipped": f"node benchmark needs rclpy and ovseg_ros.msg: {exc}"}


def run_storms(args: argparse.Namespace, model: str, cfg: SegmenterConfig,
               ab: bool = False) -> dict[str, Any]:
    """The node process under its clients' storms (bench/storms.py); ab: two variants of the
    node, phase by phase in turn (bench/storms_ab.py)."""
    try:
        from .storms import IMPOLITE, STORMS, bench_storms
        from .storms_ab import bench_storms_ab

        params = {"model": model, "clip_weights": "random", "heads": "random",
                  "device": cfg.device, "precision": cfg.precision, "backend": cfg.backend,
                  "input_size": cfg.input_size}
        if args.threads > 0:
            params["threads"] = args.threads
        storms, impolite = STORMS, IMPOLITE
        if args.smoke:
            storms, impolite = ({k: (threads, 1.0) for k, (threads, _) in s.items()}
                                for s in (STORMS, IMPOLITE))
        run = bench_storms_ab if ab else bench_storms
        return run(params, register=model if model in CONFIGS else "",
                   quiet_s=1.0 if args.smoke else 10.0, storms=storms, impolite=impolite)
    except ImportError as exc:  # rclpy or the generated messages are missing
        return {"skipped": f"storms benchmark needs rclpy and ovseg_ros.msg: {exc}"}


def run_console(args: argparse.Namespace, model: str, cfg: SegmenterConfig,
                size: tuple[int, int]) -> dict[str, Any]:
    """`ovseg console` with 0, 1 and 5 browser pages beside a node process, `--node-duration`
    seconds per window (bench/console_bench.py)."""
    from .console_bench import bench_console

    params = {"model": model, "clip_weights": "random", "heads": "random",
              "device": cfg.device, "precision": cfg.precision, "backend": cfg.backend,
              "input_size": cfg.input_size, "qos": "reliable"}
    if args.threads > 0:
        params["threads"] = args.threads
    return bench_console(params, register=model if model in CONFIGS else "", size=size,
                         rate_hz=15.0 if args.smoke else 30.0,
                         window_s=2.0 if args.smoke else args.node_duration,
                         rounds=1 if args.smoke else 3)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "python -m ovseg_ros.bench " + shlex.join(argv)
    results = run(args, command)
    report.print_results(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.out}")
    if args.compare:
        old = json.loads(args.compare.read_text())
        report.print_compare(report.compare(results, old), old.get("header", {}))
    table = report.markdown(results, command)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
