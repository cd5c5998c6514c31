"""Printing results: stage tables, ratios, `--compare old.json`, and a markdown summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Row = tuple[str, str, str, dict[str, float]]  # (section, variant, stage, summary)
GENERIC = ("reproducible", "cli_ab")  # summarised as their stage and ratio rows


def stage_rows(results: dict[str, Any]) -> Iterator[Row]:
    """Every (section path, variant, stage, {median, p90, ...}) in a results dict."""

    def walk(path: str, node: Any) -> Iterator[Row]:
        if not isinstance(node, dict):
            return
        stages = node.get("stages")
        if isinstance(stages, dict):
            for variant, by_stage in stages.items():
                if isinstance(by_stage, dict) and "median" in by_stage:  # flat: stage -> summary
                    yield path, "", variant, by_stage
                    continue
                for stage, s in (by_stage or {}).items():
                    if isinstance(s, dict) and "median" in s:
                        yield path, variant, stage, s
        for key, child in node.items():
            if key != "stages" and isinstance(child, dict):
                yield from walk(f"{path}/{key}" if path else key, child)

    yield from walk("", results.get("sections", {}))


def ratio_rows(results: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    def walk(path: str, node: Any) -> Iterator[tuple[str, str, float]]:
        if not isinstance(node, dict):
            return
        for name, value in (node.get("ratios") or {}).items():
            yield path, name, float(value)
        for key, child in node.items():
            if key != "ratios" and isinstance(child, dict):
                yield from walk(f"{path}/{key}" if path else key, child)

    yield from walk("", results.get("sections", {}))


def print_header(header: dict[str, Any]) -> None:
    print("# ovseg_ros benchmark")
    for key, value in header.items():
        print(f"  {key}: {value}")


def print_results(results: dict[str, Any]) -> None:
    print(f"\n{'section':<26} {'variant':<16} {'stage':<26} {'median ms':>10} {'p90 ms':>10}")
    for path, variant, stage, s in stage_rows(results):
        print(f"{path:<26} {variant:<16} {stage:<26} {1e3 * s['median']:>10.2f} "
              f"{1e3 * s['p90']:>10.2f}")
    print("\nratios (median of per-round ratios, same run, interleaved):")
    for path, name, value in ratio_rows(results):
        print(f"  {path:<26} {name:<40} {value:8.3f}")
    for path, name, value in extra_rows(results):
        print(f"  {path:<26} {name:<40} {value}")


def extra_rows(results: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    sections = results.get("sections", {})
    for key, sec in sections.items():
        if not isinstance(sec, dict):
            continue
        for sub, val in sec.items():
            if isinstance(val, dict) and "labels_vs_fp32" in val:
                for k, v in val["labels_vs_fp32"].items():
                    yield f"{key}/{sub}", f"labels_vs_fp32.{k}", v
        if key == "memory":
            for k, v in sec.items():
                for kk, vv in (v.items() if isinstance(v, dict) else [("", v)]):
                    yield key, f"{k}.{kk}" if kk else k, vv
        if key == "compile":
            yield key, "compile_s", sec.get("compile_s", sec.get("skipped"))
        if key == "attention":
            yield key, "tokens", sec["tokens"]
            yield key, "max_rel_diff", sec["max_rel_diff"]
        if key == "backends":
            yield from backend_rows(sec)


def backend_rows(sec: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for group in ("matmul_peak_gflops", "achieved_gflops", "export"):
        for k, v in (sec.get(group) or {}).items():
            yield "backends", f"{group}.{k}", v
    for group in ("vs_torch_fp32", "feature_cosine_vs_torch_fp32"):
        for variant, agree in (sec.get(group) or {}).items():
            for k, v in agree.items():
                yield "backends", f"{variant}.{group}.{k}", v
    for k in ("cpu_vnni", "cpu_native_bf16", "int8_rule", "onnxruntime", "note"):
        if k in sec:
            yield "backends", k, sec[k]
    for group in ("auto", "shared_core"):
        for k, v in (sec.get(group) or {}).items():
            yield "backends", f"{group}.{k}", v


def compare(new: dict[str, Any], old: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(name, old median, new median, new/old) for every stage present in both."""
    before = {(p, v, s): x["median"] for p, v, s, x in stage_rows(old)}
    rows = []
    for p, v, s, x in stage_rows(new):
        if (p, v, s) in before and before[(p, v, s)] > 0:
            rows.append((f"{p} {v} {s}".replace("  ", " "), before[(p, v, s)], x["median"],
                         x["median"] / before[(p, v, s)]))
    return rows


def print_compare(rows: list[tuple[str, float, float, float]], old_header: dict[str, Any]) -> None:
    print(f"\ncompare with {old_header.get('time')} ({old_header.get('commit')}, "
          f"{old_header.get('cpu')}): new/old per stage median")
    for name, a, b, r in rows:
        print(f"  {name:<64} {1e3 * a:>9.2f} -> {1e3 * b:>9.2f} ms  x{r:.3f}")


def markdown(results: dict[str, Any], command: str) -> str:
    """A short markdown table (doc/benchmarks/): the numbers a user cares about, with their
    provenance."""
    h = results["header"]
    sec = results.get("sections", {})
    lines = [f"# Benchmark of {h['time'][:10]}: {h['device']} {h['dtype']}", "",
             f"Measured on {h['cpu']} ({h['cpu_count']} cores, {h['threads']} threads, "
             f"{', '.join(h['cpu_flags'])}), {h['device']} {h['dtype']}, torch {h['torch']}, "
             f"open_clip {h['open_clip']}, load average at start {h['loadavg_start'][0]:.1f}.",
             f"Command: `{command}`", "",
             "| what | median ms | p90 ms | ratio |", "|---|---:|---:|---:|"]

    def row(label: str, s: dict[str, float] | None, ratio: str = "") -> None:
        if s:
            lines.append(f"| {label} | {1e3 * s['median']:.1f} | {1e3 * s['p90']:.1f} | {ratio} |")

    for key, core in sec.get("core", {}).items():
        st, r = core["stages"], core["ratios"]
        row(f"{key} pipeline (segment)", st["pipeline"].get("segment"),
            f"{r['pipeline_vs_bare']:.2f}x bare encoder (best times: "
            f"{r['pipeline_vs_bare_min']:.2f}x)")
        row(f"{key} bare open_clip encoder", st["bare_encoder"]["total"])
        if "plain_fp32" in st:
            row(f"{key} plain fp32 pipeline", st["plain_fp32"]["total"],
                f"{r['plain_fp32_vs_pipeline']:.2f}x ours (best times: "
                f"{r['plain_fp32_vs_pipeline_min']:.2f}x)")
        for stage in ("decode", "preprocess", "clip_forward", "heads_pooling", "upsample_argmax",
                      "encode"):
            row(f"{key} &nbsp; stage {stage}", st["pipeline"].get(stage))
    notes = []
    peak = max(h.get("matmul_gflops", {}).values(), default=0.0)
    for key, core in sec.get("core", {}).items():
        ach = core.get("achieved_gflops", {})
        if ach and peak:
            notes.append(f"- {key}: encoder {core['encoder_gflop']:.0f} GFLOP per frame; bare "
                         f"encoder {ach['bare_encoder']:.0f} GFLOP/s, our clip_forward "
                         f"{ach['clip_forward']:.0f} GFLOP/s; best {h['dtype']} 1024^3 matmul "
                         f"{peak:.0f} GFLOP/s.")
        agree = core.get("labels_vs_fp32")
        if agree:
            notes.append(f"- {key}: {h['dtype']} vs fp32 labels agree on "
                         f"{100 * agree['pixel_agreement_mean']:.1f}% of pixels, "
                         f"{100 * agree['agreement_where_margin_gt_0.1']:.1f}% where the fp32 top "
                         f"class leads by > 0.1 ({100 * agree['share_margin_gt_0.1']:.0f}% of "
                         "pixels; random weights: a numerical-stability figure only).")
        for sub in ("batch", "threads"):
            for name, value in core.get(sub, {}).get("ratios", {}).items():
                if not name.startswith("batch1_"):
                    notes.append(f"- {key} {sub}: {name} = {value:.2f}")
    for key, pts in sec.get("points", {}).items():
        st = pts["stages"]
        row(f"{key} 3D points (decode depth, project + pack, medians, copy)", st["points"]["total"],
            f"{100 * pts['ratios']['points_vs_inference']:.2f}% of inference "
            f"({1e3 * st['inference']['total']['median']:.0f} ms, same run)")
    voc = sec.get("vocab", {})
    if voc:
        r = voc.get("ratios", {})
        row("vocabulary: add 1 class to 20", voc["stages"]["add_one_to_20"]["total"],
            f"plain fp32 {r['plain_fp32_vs_add_one']:.1f}x slower"
            if "plain_fp32_vs_add_one" in r else "")
        row("vocabulary: 20 classes from scratch", voc["stages"]["scratch_20"]["total"])
    qry = sec.get("query", {})
    if "stages" in qry:
        key, r, st = "x".join(str(v) for v in qry["size"][::-1]), qry["ratios"], qry["stages"]
        row(f"{key} ~/query, cached phrase", st["query_cached"]["total"],
            f"{100 * r['query_cached_vs_frame']:.2f}% of a frame "
            f"({1e3 * st['frame']['total']['median']:.0f} ms, same run)")
        row(f"{key} ~/query, new phrase", st["query_new"]["total"],
            f"{100 * r['query_new_vs_frame']:.1f}% of a frame; extra over cached = "
            f"{r['query_new_extra_vs_text_encode']:.2f}x one text-encoder call")
        row(f"{key} ~/features message ({qry['features_bytes_fp16'] / 1e6:.2f} MB fp16)",
            st["features_msg"]["total"], f"{100 * r['features_msg_vs_frame']:.2f}% of a frame")
    diy = sec.get("clipdiy", {})
    if "stages" in diy:
        r = diy["ratios"]
        row(f"CLIP-DIY keyframe ({diy['crops']} crops, {diy['max_batch']} per forward)",
            diy["stages"]["batched"]["total"],
            f"per-crop loop {r['per_crop_loop_vs_batched']:.2f}x"
            + (f", fp32 loop {r['per_crop_loop_fp32_vs_batched']:.2f}x"
               if "per_crop_loop_fp32_vs_batched" in r else ""))
        for name, s in diy["stages"].items():
            if name != "batched":
                row(f"&nbsp; CLIP-DIY {name}", s["total"])
    for key, run in sec.get("node", {}).items():
        if "stages" in run:
            row(f"node {key}: stamp -> output received", run["stages"]["latency_stamp_to_receive"],
                f"{run['output_fps']:.1f} fps ({run['input_fps']:.0f} in); overhead "
                f"{100 * run['ratios']['node_overhead_vs_inference']:.1f}% of inference")
    back = sec.get("backends", {})
    if "stages" in back:
        size = "x".join(str(v) for v in back["size"][::-1])
        ach, r = back.get("achieved_gflops", {}), back.get("ratios", {})
        for name, st in back["stages"].items():
            speed = r.get(f"{name}_speed_vs_torch_fp32", 1.0)
            agree = back.get("vs_torch_fp32", {}).get(name)
            extra = (f"; labels agree on {100 * agree['pixel_agreement']:.1f}% of pixels, prob "
                     f"diff max {agree['patch_prob_maxdiff']:.2g} mean "
                     f"{agree['patch_prob_meandiff']:.2g}" if agree else "")
            row(f"{size} backend {name} (frame)", st["total"],
                f"{speed:.2f}x torch fp32; dense encoder {ach.get(name, 0):.3g} GFLOP/s{extra}")
        peaks = ", ".join(f"{k} {v:.0f}" for k, v in back.get("matmul_peak_gflops", {}).items())
        shape = " x ".join(str(v) for v in back.get("matmul_shape", []))
        notes.append(f"- backends: matmul peaks at the encoder's MLP shape (m x k x n = {shape}; "
                     f"GFLOP/s): {peaks}; {back['note']}.")
        auto = back.get("auto") or {}
        if auto:
            notes.append(f"- backends: `auto` (probe {auto['probe_s']:.1f} s) chose "
                         f"{auto['choice']}; in the interleaved run it took "
                         f"{auto['choice_frame_ms']:.0f} ms per frame against "
                         f"{auto['best_frame_ms']:.0f} ms for the fastest of its candidates "
                         f"({auto['best_in_run']}): {auto['choice_over_best']:.2f}x.")
        shared = back.get("shared_core") or {}
        if shared:
            slow = ", ".join(f"{k} {v:.2f}x ({shared['frame_ms'][k]:.0f} ms)"
                             for k, v in shared["slowdown_vs_idle"].items())
            notes.append(f"- backends, one core busy (a spinning child process, "
                         f"{shared['threads']} threads on {shared['cpus']} CPUs, load "
                         f"{shared['load_before']:.1f} before): frame time vs the idle run: "
                         f"{slow}.")
        export = back.get("export", {})
        if "export_s" in export:
            notes.append(f"- backends: ONNX export {export['export_s']:.1f} s + int8 "
                         f"{export['quantise_s']:.1f} s, peak RSS {export['peak_rss_mb']:.0f} MB "
                         f"(fresh process), files {export['fp32_file_mb']:.0f} / "
                         f"{export['int8_file_mb']:.0f} MB.")
    cli = sec.get("cli", {})
    if "stages" in cli:
        size, r = "x".join(str(v) for v in cli["size"][::-1]), cli["ratios"]
        for name, st in cli["stages"].items():
            than = r.get(f"authors_plain_fp32_vs_{name}")
            row(f"{size} `ovseg segment` per frame: {name}"
                + (f" ({cli['compute'][name]})" if name in cli["compute"] else ""),
                st["per_frame"], f"authors' plain fp32 pipeline: {than:.2f}x this time" if than
                else "")
        if "defaults_vs_fastest_exact" in r:
            notes.append(f"- cli: `ovseg segment` with the defaults took "
                         f"{r['defaults_vs_fastest_exact']:.2f}x the per-frame time of the "
                         "fastest exact candidate run the same way (target <= 1.1x).")
    vocab = sec.get("cli_vocab", {})
    if "ratio_large_vs_small" in vocab:
        size = "x".join(str(v) for v in vocab["size"][::-1])
        for name, st in vocab["stages"].items():
            row(f"{size} `ovseg segment` per frame, torch fp32, {name.replace('_', ' ')}",
                st["per_frame"], "")
        small, large = vocab["counts"]
        notes.append(f"- cli: `ovseg segment` per frame with {large} prompts took "
                     f"{vocab['ratio_large_vs_small']:.2f}x its time with {small} (target <= "
                     "1.3x).")
    mem = sec.get("memory", {})
    if mem:
        lines.append(f"| peak RSS (product path / whole bench) | "
                     f"{mem.get('peak_rss_after_segment_mb', 0):.0f} MB | "
                     f"{mem.get('peak_rss_mb', 0):.0f} MB | |")
        load = mem.get("load_from_file", {})
        if "peak_rss_mb" in load:
            lines.append(f"| RSS of a new process loading a {load['weights_file_mb']:.0f} MB "
                         f"weights file (peak at load / steady after frames) | "
                         f"{load['peak_rss_at_load_mb']:.0f} MB | "
                         f"{load['rss_after_frames_mb']:.0f} MB | |")
    life = sec.get("lifecycle", {})
    if "rss_mb" in life:
        rss, secs = life["rss_mb"], life["transition_s"]
        steps = ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in rss.items())
        notes.append(f"- lifecycle ({life['model']}, fresh process, {life['frames']} frames): "
                     f"RSS MB {steps}; cleanup - before configure = "
                     f"{life['cleanup_minus_before_configure_mb']:+.0f} MB (target <= "
                     f"{life['target_mb']:.0f}: {'met' if life['target_met'] else 'NOT met'}); "
                     "transitions s " + ", ".join(f"{k} {v:.2f}" for k, v in secs.items()) + ".")
    if "objects" in sec:
        from .objects_bench import markdown_lines as objects_lines

        notes += objects_lines(sec["objects"])
    if "runs" in sec.get("tracking", {}):
        from .tracking import markdown_lines as tracking_lines

        notes += tracking_lines(sec["tracking"])
    storms = sec.get("storms", {})
    if "phases" in storms:
        from .storms import table

        notes += ["", f"Storms (node process, camera {storms['camera_size'][0]}x"
                  f"{storms['camera_size'][1]} at {storms['camera_hz']:g} Hz, clients in other "
                  f"processes with a {storms['client_timeout_s']:g} s timeout; "
                  f"{storms['node_configured']}):", "", table(storms)]
    console = sec.get("console", {})
    if "kinds" in console:
        from .console_bench import table as console_table

        notes += ["", f"`ovseg console` (node process, camera {console['camera_size'][0]}x"
                  f"{console['camera_size'][1]} at {console['camera_hz']:g} Hz, "
                  f"{console['window_s']:g} s windows, {console['rounds']} rounds of no page / "
                  f"1 page / 5 pages / 5 overlay pages between two windows without a console; "
                  f"headless Chromium under SCHED_IDLE on the same machine; "
                  f"{console['node_configured']}):", "",
                  console_table(console)]
    ab = sec.get("storms_ab", {})
    if "variants" in ab:
        from .storms_ab import table_ab

        notes += ["", f"Storms, two variants phase by phase in turn (camera "
                  f"{ab['camera_size'][0]}x{ab['camera_size'][1]} at {ab['camera_hz']:g} Hz; "
                  + "; ".join(f"{n}: {v['overrides'] or 'defaults'}, {v['node_configured']}"
                              for n, v in ab["variants"].items()) + "):", "", table_ab(ab)]
    for name in GENERIC:  # sections without a summary of their own: every stage and ratio
        if name in sec:
            only = {"sections": {name: sec[name]}}
            for path, variant, stage, s in stage_rows(only):
                row(f"{path} {variant} {stage}".replace("  ", " "), s)
            notes += [f"- {path}: {ratio} = {value:.3f}" for path, ratio, value in
                      ratio_rows(only)]
    return "\n".join(lines + ([""] + notes if notes else []))
