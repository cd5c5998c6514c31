"""A busy node keeps its frames and answers its lifecycle (three storms of clients).

The node runs as its own process (segment_node.main, a 4-thread executor) on the tiny image
tower with ViT-B-16's text tower (`ovseg-tiny-text`: a new name costs what it costs with the
real model), labelling a camera published at 5 Hz from this process. Client processes storm it
(bench/storm_clients.py) while a probe process polls ~/get_state and ~/get_prompts ten times a
second. Each storm runs twice: with polite clients (they wait the time a refusal names) and
with impolite ones (they call again at once). Under each storm:

- the node labels at least half as many frames per second as without the storm;
- every get_state and get_prompts answers within 1 s;
- every request gets an answer, success or a refusal with its reason, within the clients'
  timeout (storms.CLIENT_TIMEOUT_S).

This file run against the code before admission control (2026-12-06): the new-phrase
and set_prompts storms failed (frames at 0.05x and 0.07x of the quiet rate, get_state up to
6.3 and 6.8 s); the cached-query storm passed at this image size (get_state 0.38 s at most,
frames 0.87x; at 320x240 the storms benchmark measured get_state up to 2.3 s there). What the
storms cost is measured by `python -m ovseg_ros.bench --only storms` (doc/performance.md).
"""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")
from ovseg_ros.bench.storms import CLIENT_TIMEOUT_S, IMPOLITE, STORMS, StormRig  # noqa: E402
from ovseg_ros.core.tiny import TINY_TEXT  # noqa: E402

pytestmark = pytest.mark.quiet  # frame-rate and answer-time bounds under storms
QUIET_S = 10.0
STORM_S = 8.0  # each storm's window here (the benchmark's are 12 to 20 s): 40 quiet frames
ANSWER_BOUND_S = 1.0
PARAMS = dict(model=TINY_TEXT, clip_weights="random", heads="random", device="cpu",
              precision="fp32", backend="torch", input_size=224)


@pytest.fixture(scope="module")
def rig():
    # 160x120 frames: a query's answer (relevance and mask images, 2 phrases) is about 190 KB.
    # At 320x240 it is 4 times that, and at 10 answers/s a single request or reply was at times
    # delayed 2 to 3 s (a get_state among them) while the node's own callbacks ran on time:
    # probably a sample dropped in transport and resent at the next heartbeat (doc/node.md,
    # known limits). The storms benchmark runs at 320x240 and reports such delays.
    with StormRig(PARAMS, ns="/storm_test", size=(120, 160), register=TINY_TEXT) as rig:
        rig.warm_up()
        rig.quiet = rig.phase("probe", 0, QUIET_S)
        yield rig


@pytest.mark.parametrize("polite", [True, False], ids=["polite", "impolite"])
@pytest.mark.parametrize("kind", ["query_new", "set_prompts", "query_cached"])
def test_frames_and_lifecycle_hold_under_the_storm(rig, kind, polite):
    threads, seconds = (STORMS if polite else IMPOLITE)[kind]
    seconds = min(seconds, STORM_S)
    quiet = rig.quiet["frames_per_s"]
    report = rig.phase(kind, threads, seconds, polite=polite)
    services = report["services"]
    storm = services["query" if kind.startswith("query") else "set_prompts"]
    counts = {k: (v["sent"], v["ok"], v["refused"], v["lost"], round(v["max_s"], 3))
              for k, v in services.items()}
    print(f"{kind}: frames/s {report['frames_per_s']:.2f} (quiet {quiet:.2f}); sent, ok, "
          f"refused, lost, max s: {counts}; refusals {storm['reasons']}")
    assert quiet >= 2.5, rig.quiet  # the baseline itself: most of the 5 Hz labelled
    assert report["frames_per_s"] >= 0.5 * quiet, (report["frames_per_s"], quiet)
    for probe in ("get_state", "get_prompts"):
        s = services[probe]
        assert s["sent"] >= 5 * seconds and s["lost"] == 0 and s["ok"] == s["sent"], (probe, s)
        assert s["max_s"] <= ANSWER_BOUND_S, (probe, s)
    assert storm["sent"] >= threads and storm["ok"] >= 1, storm
    assert storm["lost"] == 0 and storm["max_s"] < CLIENT_TIMEOUT_S, storm
    assert storm["ok"] + storm["refused"] == storm["sent"]
    for reason in storm["reasons"]:  # every refusal says why and when to call again
        assert reason.startswith("busy: ") and "call again in about" in reason, reason
