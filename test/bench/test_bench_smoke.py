"""`python -m ovseg_ros.bench --smoke` in-process: every section present with positive numbers,
and the plain baseline computes the same thing as the core (so its ratio is a fair one)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_segmenter

from ovseg_ros.bench import __main__ as bench
from ovseg_ros.bench import report
from ovseg_ros.bench.baselines import BareEncoder, PlainPipeline, plain_text_embeddings
from ovseg_ros.bench.sections import sample_images


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    args = bench.build_parser().parse_args(["--smoke", "--out", str(out)])
    results = bench.run(args, "python -m ovseg_ros.bench --smoke")
    out.write_text(json.dumps(results))
    return json.loads(out.read_text())


def _positive_stages(section) -> int:
    count = 0
    for _, _, stage, s in report.stage_rows({"sections": section}):
        assert s["median"] > 0 and s["p90"] >= s["median"] and s["n"] >= 1, stage
        count += 1
    return count


@pytest.mark.slow
def test_smoke_has_every_section_with_positive_numbers(smoke):
    header, sections = smoke["header"], smoke["sections"]
    for key in ("cpu", "device", "dtype", "threads", "torch", "open_clip", "matmul_gflops"):
        assert header[key], key
    assert set(sections) == set(bench.SECTIONS)
    for name in ("core", "points", "vocab", "objects", "clipdiy", "backends", "node", "bag"):
        assert "skipped" not in sections[name], sections[name]
        assert _positive_stages({name: sections[name]}) > 0, name
    core = next(iter(sections["core"].values()))
    for stage in ("decode", "preprocess", "clip_forward", "heads_pooling", "upsample_argmax",
                  "encode", "segment"):
        assert core["stages"]["pipeline"][stage]["median"] > 0, stage
    assert set(core["ratios"]) >= {"pipeline_vs_bare", "plain_fp32_vs_pipeline"}
    assert all(v > 0 for _, _, v in report.ratio_rows(smoke))
    node = next(iter(sections["node"].values()))
    assert node["frames"] > 0 and node["ratios"]["node_overhead_vs_inference"] > 0
    assert sections["memory"]["peak_rss_mb"] > 0
    objects = sections["objects"]  # beside the frame, same run
    assert objects["instances"] > 0 and objects["ratios"]["objects_vs_frame"] > 0
    for stage in ("instances", "tracks", "boxes_3d", "vectors", "messages"):
        assert objects["stages"]["objects"][stage]["median"] > 0, stage
    assert sections["tracking"]["targets_met"] == {"clean": True, "drops": True}
    bag = sections["bag"]  # ovseg bag beside inference and beside the node, same run
    assert bag["batch1"]["frames_per_s"] > 0 and bag["ratios"]["bag_share_of_frame_pct"] > 0
    assert bag["ratios"]["bag_fps_over_node_fps"] > 0
    load = sections["memory"]["load_from_file"]
    assert "skipped" not in load, load
    assert load["weights_file_mb"] > 0
    assert load["peak_rss_mb"] >= load["peak_rss_at_load_mb"] > 0 and load["rss_after_load_mb"] > 0
    assert sections["clipdiy"]["crops"] > 1
    life = sections["lifecycle"]
    assert "error" not in life, life
    assert life["frames"] == 3 and life["final_state"] == "unconfigured"
    rss = life["rss_mb"]
    assert list(rss) == ["before_configure", "after_configure", "after_activate_and_frames",
                         "after_deactivate", "after_cleanup"]
    assert all(v > 0 for v in rss.values()) and set(life["transition_s"]) == {
        "configure", "activate", "deactivate", "cleanup"}
    assert life["cleanup_minus_before_configure_mb"] == pytest.approx(
        rss["after_cleanup"] - rss["before_configure"])
    assert "lifecycle (" in report.markdown(smoke, "x") and "cleanup - before configure" in \
        report.markdown(smoke, "x")
    storms = sections["storms"]  # the node process under its clients' storms (short here)
    kinds = ("query_cached", "query_new", "set_prompts")
    assert "skipped" not in storms and set(storms["phases"]) == {
        "quiet", *kinds, *(f"{k}_impolite" for k in kinds), "quiet_after"}
    assert storms["phases"]["quiet"]["frames_per_s"] > 0
    assert storms["phases"]["quiet"]["services"]["get_state"]["ok"] > 0
    assert storms["phases"]["query_cached_impolite"]["node_cpu_cores"] > 0
    assert "| query_new |" in report.markdown(smoke, "x")
    assert "| query_new_impolite |" in report.markdown(smoke, "x")
    pts = next(iter(sections["points"].values()))
    for stage in ("decode_depth", "project_pack", "class_medians", "message_copy"):
        assert pts["stages"]["points"][stage]["median"] > 0, stage
    assert pts["stages"]["inference"]["total"]["median"] > 0
    assert pts["points"] == 48 * 64 and pts["ratios"]["points_vs_inference"] > 0


@pytest.mark.slow
def test_backends_section_runs_every_variant_side_by_side(smoke):
    """onnxruntime is installed in CI: its variants must be there, never skipped."""
    sec = smoke["sections"]["backends"]
    want = {"torch_fp32", "onnxruntime_fp32", "onnxruntime_int8", "onnxruntime_int8_spinning"}
    if sec["cpu_native_bf16"]:
        want.add("torch_bf16")
    assert want <= set(sec["stages"]), sec.get("onnxruntime")
    for name in set(sec["stages"]) - {"torch_fp32"}:
        assert sec["ratios"][f"{name}_speed_vs_torch_fp32"] > 0
        assert 0 < sec["vs_torch_fp32"][name]["pixel_agreement"] <= 1
    assert sec["vs_torch_fp32"]["onnxruntime_fp32"]["patch_prob_maxdiff"] < 1e-4
    assert sec["vs_torch_fp32"]["onnxruntime_int8"]["patch_prob_maxdiff"] > 0  # quantised
    assert all(v > 0 for v in sec["achieved_gflops"].values())
    assert {"torch_fp32", "onnxruntime_fp32", "onnxruntime_int8_u8s8"} <= set(
        sec["matmul_peak_gflops"])
    export = sec["export"]
    assert export["export_s"] > 0 and export["quantise_s"] > 0, export
    assert export["peak_rss_mb"] >= export["rss_before_export_mb"] > 0
    assert export["int8_settings"] == sec["int8_rule"]
    assert "backend onnxruntime_int8" in report.markdown(smoke, "x")


@pytest.mark.slow
def test_cli_section_times_ovseg_segment_beside_the_authors_pipeline(smoke):
    """`ovseg segment` processes (defaults and int8 in --smoke) per frame, start-up removed,
    and the authors' plain fp32 pipeline on the same frames in the same run."""
    cli = smoke["sections"]["cli"]
    assert set(cli["stages"]) == {"defaults", "int8", "authors_plain_fp32"}
    for name, st in cli["stages"].items():
        assert st["per_frame"]["median"] > 0 and st["per_frame"]["n"] >= 2, name
    assert "int8 via onnxruntime" in cli["compute"]["int8"]  # what the process said it ran
    assert "chosen by" in cli["compute"]["defaults"]
    assert cli["ratios"]["authors_plain_fp32_vs_int8"] > 0
    assert "`ovseg segment` per frame: int8" in report.markdown(smoke, "x")


@pytest.mark.slow
def test_compare_and_markdown(smoke):
    rows = report.compare(smoke, smoke)
    assert rows and all(abs(r - 1.0) < 1e-9 for *_, r in rows)
    table = report.markdown(smoke, "python -m ovseg_ros.bench --smoke")
    assert "| what |" in table and "--smoke" in table


@pytest.mark.parametrize("input_size", [0, 40])
def test_plain_pipeline_matches_the_core_in_fp32(tmp_path, input_size):
    seg = tiny_segmenter(tmp_path, input_size=input_size)
    seg.set_prompts(["chair", "person", "door handle"])
    active = seg._require_active()
    text = plain_text_embeddings(seg.clip, seg.tokenizer, list(active.names))
    assert torch.allclose(text, active.text, atol=1e-5)
    plain = PlainPipeline(seg.clip, seg.heads, text, active.channel_ids, True, input_size)
    for img in sample_images((48, 80), 2):
        got, want = seg.segment(img), plain(img)
        assert np.allclose(got.patch_probs, want["patch_probs"], atol=1e-4)
        assert (got.labels == want["labels"]).mean() > 0.999


def test_bare_encoder_leaves_the_shared_model_alone(tmp_path):
    seg = tiny_segmenter(tmp_path)
    table = seg.clip.visual.positional_embedding
    bare = BareEncoder(seg.clip.visual, (48, 80))
    assert bare(torch.rand(1, 3, 48, 80)).shape == (1, seg.encoder.embed_dim)
    assert seg.clip.visual.positional_embedding is table


@pytest.mark.slow
def test_opt_in_compile_section_measures_eager_against_compiled():
    args = bench.build_parser().parse_args(["--smoke", "--only", "compile", "--no-plain"])
    results = bench.run(args, "python -m ovseg_ros.bench --smoke --only compile")
    assert set(results["sections"]) == {"compile"}
    sec = results["sections"]["compile"]
    if "skipped" in sec:  # no C++ toolchain: the reason is recorded, never silent
        assert "torch.compile failed" in sec["skipped"]
        pytest.fail(f"compile section could not run here: {sec['skipped']}")
    assert _positive_stages({"compile": sec}) == 2
    assert sec["compile_s"] > 0 and sec["ratios"]["eager_vs_compiled"] > 0


def test_unknown_section_is_refused():
    args = bench.build_parser().parse_args(["--smoke", "--only", "core,nonsense"])
    with pytest.raises(SystemExit, match="nonsense"):
        bench.run(args)


@pytest.mark.slow
def test_opt_in_attention_section_compares_equal_blocks():
    args = bench.build_parser().parse_args(["--smoke", "--only", "attention", "--no-plain"])
    results = bench.run(args, "python -m ovseg_ros.bench --smoke --only attention")
    att = results["sections"]["attention"]
    assert att["tokens"] > 1 and _positive_stages({"attention": att}) == 2
    # the same block through two attention kernels: equal up to the dtype's rounding
    low = results["header"]["dtype"] in ("bfloat16", "float16")
    assert att["max_rel_diff"] < (2e-2 if low else 1e-4)
    assert att["ratios"]["module_vs_sdpa"] > 0


@pytest.mark.slow
def test_opt_in_sections_compare_in_one_run(tmp_path):
    """The reproducibility costs and the A/B against an earlier revision, as a smoke."""
    args = bench.build_parser().parse_args(["--smoke", "--only", "reproducible,cli_ab",
                                            "--no-plain"])
    sections = bench.run(args, "python -m ovseg_ros.bench --smoke")["sections"]
    repro = sections["reproducible"]
    assert _positive_stages({"reproducible": repro}) == 6
    assert all(v > 0 for v in repro["ratios"].values())
    ab = sections["cli_ab"]
    assert ab["against"] == "b0db3ff" and ab["ratios"]["then_over_now_per_frame"] > 0


@pytest.mark.slow
def test_opt_in_console_section_measures_pages_beside_the_node():
    """A node process, `ovseg console` and five headless Chromium browsers: every kind of
    window counted, each page painted frames, and their publication-to-paint times kept."""
    args = bench.build_parser().parse_args(["--smoke", "--only", "console", "--no-plain"])
    results = bench.run(args, "python -m ovseg_ros.bench --smoke --only console")
    sec = results["sections"]["console"]
    kinds = sec["kinds"]
    assert set(kinds) == {"no_console", "0_pages", "1_page", "5_pages", "5_overlay",
                          "1_page_normal"}
    assert kinds["no_console"]["windows"] == 2 and kinds["5_pages"]["windows"] == 1
    assert all(k["frames"] > 0 and k["frames_per_s"] > 0 for k in kinds.values())
    for kind, pages in (("1_page", 1), ("5_pages", 5), ("5_overlay", 5), ("1_page_normal", 1)):
        (window,) = [w for w in sec["windows"] if w["kind"] == kind]
        assert len(window["frames_painted_per_page"]) == pages
        assert all(n > 0 for n in window["frames_painted_per_page"])
        lat = kinds[kind]["publish_to_paint_ms"]
        assert lat["count"] > 0 and 0 < lat["median"] <= lat["p90"] <= lat["max"]
        assert kinds[kind]["console_errors"] == 0
    assert kinds["0_pages"]["publish_to_paint_ms"] == {"count": 0}
    assert "`ovseg console` (node process" in report.markdown(results, "x")
