"""Admission control in the node over real rclpy: while text is encoded no executor thread
waits (the services are coroutines awaiting the text worker), a request beyond the bounded
queue is refused at once with when to call again, the lifecycle, get_prompts and parameter
reads answer meanwhile, frames keep flowing; the query rate limit; a `prompts` parameter
with new names; cleanup drops queued encodings."""

from __future__ import annotations

import threading
import time

import pytest
from helpers.ros_helpers import stream_frames, wait_for

pytest.importorskip("rclpy")
from lifecycle_msgs.srv import GetState  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.srv import GetPrompts, Query, SetPrompts  # noqa: E402


def block_encoding(node) -> tuple[threading.Event, threading.Event, list[list[str]]]:
    """Make the node's vocabulary encoding last until the test sets `release`."""
    real = node.pipeline.encode_text
    entered, release, seen = threading.Event(), threading.Event(), []

    def slow(names):
        seen.append(list(names))
        entered.set()
        release.wait(60)
        return real(names)

    node.pipeline.encode_text = slow
    return entered, release, seen


def send(ros, srv_type, name: str, request):
    """call_async from a fresh client; (future, done event)."""
    client = ros.helper.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20.0)
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    return future, done


def test_requests_await_the_text_worker_without_holding_executor_threads(ros, autostart_node):
    """More set_prompts with new names than the executor has threads (4): the first encodes,
    `text_queue` wait, the rest are refused at once; get_state, get_prompts and parameter
    reads answer while the encoding is held, and frames are labelled meanwhile."""
    node, ns = autostart_node(text_queue=2, set_prompts_rate_hz=0.0)  # the queue alone
    base = f"{ns}/ovseg"
    segs = ros.collect(Segmentation, f"{base}/segmentation")
    stop = threading.Event()
    streamer = stream_frames(ros, ns, stop)
    try:
        assert wait_for(lambda: segs.count >= 2)
        entered, release, seen = block_encoding(node)
        first = send(ros, SetPrompts, f"{base}/set_prompts",
                     SetPrompts.Request(prompts=["cat", "zebra 0"]))
        assert entered.wait(20)
        calls = [send(ros, SetPrompts, f"{base}/set_prompts",
                      SetPrompts.Request(prompts=["cat", f"zebra {k}"])) for k in range(1, 7)]
        assert wait_for(lambda: sum(done.is_set() for _, done in calls) >= 4, timeout=10.0)
        time.sleep(0.5)  # a fifth answer would show now
        refused = [f.result() for f, done in calls if done.is_set()]
        # 2 wait in the queue, 4 were answered at once: busy, nothing changed, when to retry
        assert len(refused) == 4, [r.message for r in refused]
        for res in refused:
            assert not res.success and res.message.startswith("busy: the text encoder")
            assert "call again in about" in res.message
            assert list(res.class_names) == ["cat", "dog", "car"]  # the vocabulary in use
        # 3 requests now await the text worker, which is held: were any of the 4 executor
        # threads waiting with them, these would not be answered until it is released.
        waiting = [first] + [c for c in calls if not c[1].is_set()]
        count = segs.count
        for _ in range(3):
            state = ros.call(GetState, f"{base}/get_state", GetState.Request())
            assert state.current_state.label == "active"
            got = ros.call(GetPrompts, f"{base}/get_prompts", GetPrompts.Request())
            assert list(got.class_names) == ["cat", "dog", "car"]
            params = ros.call(GetParameters, f"{base}/get_parameters",
                              GetParameters.Request(names=["text_queue"]))
            assert params.values[0].integer_value == 2
        assert wait_for(lambda: segs.count >= count + 3, timeout=30.0)  # frames go on
        assert not any(done.is_set() for _, done in waiting)  # all that while held
        release.set()
        for future, done in waiting:
            assert done.wait(60)
            assert future.result().success, future.result().message
        assert len(seen) == 3  # three encodings ran, one at a time on the worker
        assert wait_for(lambda: node.vocabulary().names[0] == "cat", timeout=5.0)
    finally:
        stop.set()
        streamer.join(5)


def test_the_same_new_phrase_is_encoded_once_for_every_client(ros, autostart_node):
    node, ns = autostart_node()
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    stop = threading.Event()
    streamer = stream_frames(ros, ns, stop)
    try:
        assert wait_for(lambda: segs.count >= 1)
        cache = node.segmenter.text_cache
        real, gate = cache.embed, threading.Event()
        encoded: list[list[str]] = []

        def slow(names):
            if "a blue kettle" in names and "a blue kettle" not in cache:
                encoded.append(list(names))
                gate.wait(30)
            return real(names)

        cache.embed = slow
        calls = [send(ros, Query, f"{ns}/ovseg/query", Query.Request(phrases=["a blue kettle"]))
                 for _ in range(6)]
        assert wait_for(lambda: encoded, timeout=20.0)
        time.sleep(0.5)
        gate.set()
        for future, done in calls:
            assert done.wait(60) and future.result().success, future.result().message
        assert encoded == [["a blue kettle"]]
    finally:
        stop.set()
        streamer.join(5)


def test_queries_beyond_query_rate_hz_are_refused_at_once(ros, autostart_node):
    node, ns = autostart_node(query_rate_hz=2.0)
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation")
    stop = threading.Event()
    streamer = stream_frames(ros, ns, stop)
    now = [1000.0]
    node.heavy.rate.clock = lambda: now[0]  # the limit's time moves only when the test says
    try:
        assert wait_for(lambda: segs.count >= 1)
        query = Query.Request(phrases=["cat"])
        answers = [ros.call(Query, f"{ns}/ovseg/query", query) for _ in range(3)]
        assert [r.success for r in answers[:2]] == [True, True]  # the burst: one second's
        refused = answers[2]
        assert not refused.success and not refused.answers
        assert "query_rate_hz=2" in refused.message
        assert "call again in about 0.50 s" in refused.message
        # refused before any work: the query worker answered the two admitted ones only
        assert (node.heavy.queries.done, node.heavy.queries.refused) == (2, 1)
        now[0] += 0.5
        again = ros.call(Query, f"{ns}/ovseg/query", query)
        assert again.success, again.message
    finally:
        stop.set()
        streamer.join(5)


def test_a_prompts_parameter_with_new_names_is_refused_while_they_encode(ros, autostart_node):
    """The parameter callback is synchronous: it waits at most about 1 s for the encoding,
    then refuses with the reason; the encoding goes on, and setting it again succeeds. Reads
    of parameters answer during that wait."""
    node, ns = autostart_node()
    path = f"{ns}/ovseg"
    entered, release, _ = block_encoding(node)
    # The parameter callback is held at its start until the test has read the parameters.
    real, inside, proceed = node.heavy.encode_for_parameter, threading.Event(), threading.Event()

    def held(*args, **kwargs):
        inside.set()
        proceed.wait(30)
        return real(*args, **kwargs)

    node.heavy.encode_for_parameter = held
    result: list = []
    setter = threading.Thread(target=lambda: result.append(ros.set_params(
        path, [Parameter("prompts", value=["cat", "lighthouse"])])), daemon=True)
    setter.start()
    assert inside.wait(20)
    params = ros.call(GetParameters, f"{path}/get_parameters",
                      GetParameters.Request(names=["prompts"]))
    assert list(params.values[0].string_array_value) == ["cat", "dog", "car"]
    assert not result  # read while the change was in its callback
    proceed.set()
    assert entered.wait(20)
    setter.join(30)
    (r,) = result[0]
    # refused while the encoding is still held: it waited a moment, not for the encoding
    assert not release.is_set()
    assert not r.successful and "encoding the new names in the background" in r.reason
    assert node.get_parameter("prompts").value == ["cat", "dog", "car"]
    release.set()
    assert wait_for(lambda: not node.heavy.text.busy, timeout=30.0)
    (r,) = ros.set_params(path, [Parameter("prompts", value=["cat", "lighthouse"])])
    assert r.successful, r.reason
    assert node.vocabulary().names == ("cat", "lighthouse")


def test_cleanup_drops_the_queued_encodings(ros, autostart_node):
    node, ns = autostart_node(text_queue=2, autostart=True)
    base = f"{ns}/ovseg"
    entered, release, _ = block_encoding(node)
    running = send(ros, SetPrompts, f"{base}/set_prompts",
                   SetPrompts.Request(prompts=["cat", "heron"]))
    assert entered.wait(20)
    queued = send(ros, SetPrompts, f"{base}/set_prompts",
                  SetPrompts.Request(prompts=["cat", "egret"]))
    time.sleep(0.3)
    node.trigger_deactivate()
    threading.Timer(0.5, release.set).start()
    node.trigger_cleanup()
    for future, done in (queued, running):
        assert done.wait(30)
        assert not future.result().success
    assert "call again once it is configured" in queued[0].result().message
    assert node.state == "unconfigured"
