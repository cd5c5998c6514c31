"""The lifecycle and control services answer, always and fast, under a storm.

The node runs in an executor of its own with 4 threads, as in its process (runner.run_main).
While frames flow at 10 Hz, client threads call ~/set_prompts with names never seen before
(each needs text encoding), ~/keyframe and ~/set_parameters, and a lifecycle client drives
configure -> activate -> deactivate -> cleanup cycles through ~/change_state while another
polls ~/get_state. Every request is counted: each one is answered, every get_state within
0.5 s (also during a configure that loads the model) but at most one, which stays under 1 s,
every transition succeeds.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import defaultdict

import pytest
from helpers.ros_helpers import image_fields_msg, make_picture, now

pytest.importorskip("rclpy")
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.node.runner import freeze_imported_objects, spin_executor  # noqa: E402
from ovseg_ros.node.segment_node import SegmentNode  # noqa: E402
from ovseg_ros.srv import SetPrompts  # noqa: E402

pytestmark = pytest.mark.quiet  # time bounds under load or after signals: run alone

CYCLES = 20  # lifecycle cycles: ~35 s on 2 cores
PROMPT_THREADS = 6
GET_STATE_BOUND_S = 0.5
STALL_BOUND_S = 1.0  # the one get_state allowed over GET_STATE_BOUND_S stays under this
ANSWER_BOUND_S = 60.0  # "answered at all": a lost request shows as this timeout


class Counted:
    """Calls a service from one thread, counting requests, answers and the slowest answer."""

    def __init__(self, ros, srv_type, name: str, stats: dict) -> None:
        self.client = ros.helper.create_client(srv_type, name)
        assert self.client.wait_for_service(timeout_sec=20.0), name
        self.name, self.stats = name.rsplit("/", 1)[1], stats

    def __call__(self, request, bound: float = ANSWER_BOUND_S):
        s = self.stats[self.name]
        s["sent"] += 1
        done = threading.Event()
        t0 = time.monotonic()
        future = self.client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(bound):
            s["lost"] += 1
            return None
        took = time.monotonic() - t0
        s["answered"] += 1
        s["max_s"] = max(s["max_s"], took)
        s["slow"] += took > GET_STATE_BOUND_S
        return future.result()


def test_lifecycle_and_control_services_answer_under_a_storm(ros, tiny):
    name, clip, heads = tiny
    freeze_imported_objects()  # as the node's process does at start (runner._run)
    values = dict(model=name, clip_weights=str(clip), heads=str(heads), device="cpu",
                  precision="fp32", backend="torch", input_size=0, autostart=False,
                  prompts=["cat", "dog", "car"], diagnostics_period=0.25)
    node = SegmentNode(context=ros.context, namespace="/storm",
                       parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    executor = MultiThreadedExecutor(num_threads=4, context=ros.context)
    executor.add_node(node)
    spinner = threading.Thread(target=spin_executor, args=(executor,), daemon=True)
    spinner.start()
    stats: dict = defaultdict(lambda: dict(sent=0, answered=0, lost=0, slow=0, max_s=0.0))
    base = "/storm/ovseg"
    stop, errors, cycles_done = threading.Event(), [], []
    pub = ros.helper.create_publisher(Image, "/storm/image", Q.reliable(5))
    fresh = itertools.count()

    def run(body) -> threading.Thread:
        def loop() -> None:
            try:
                while not stop.is_set():
                    body()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(repr(exc))
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def frames() -> None:
        pub.publish(image_fields_msg(make_picture(24, 32), stamp=now(ros)))
        time.sleep(0.1)

    def prompts_caller():
        call = Counted(ros, SetPrompts, f"{base}/set_prompts", stats)

        def body() -> None:
            new = [f"thing {next(fresh)}" for _ in range(3)]
            res = call(SetPrompts.Request(prompts=["cat", *new]))
            if res is not None and not res.success:
                stats["set_prompts refused"][res.message.split(":")[0][:40]] = 1
            time.sleep(0.02)  # a planner hammering, not a spin loop (the GIL is shared)
        return body

    def keyframe_caller():
        call = Counted(ros, Trigger, f"{base}/keyframe", stats)
        return lambda: (call(Trigger.Request()), time.sleep(0.05))

    def param_caller():
        call = Counted(ros, SetParameters, f"{base}/set_parameters", stats)
        flip = itertools.cycle([0.1, 0.2])
        return lambda: (call(SetParameters.Request(parameters=[
            Parameter("threshold", value=next(flip)).to_parameter_msg()])), time.sleep(0.05))

    def state_poller():
        call = Counted(ros, GetState, f"{base}/get_state", stats)
        return lambda: (call(GetState.Request()), time.sleep(0.05))

    change = Counted(ros, ChangeState, f"{base}/change_state", stats)

    def lifecycle() -> None:
        for _ in range(CYCLES):
            for label in ("configure", "activate", "deactivate", "cleanup"):
                res = change(ChangeState.Request(transition=Transition(label=label)))
                if res is None or not res.success:
                    errors.append(f"change_state {label}: {'lost' if res is None else 'failed'}"
                                  f" ({node.last_error})")
                    return
                if label == "activate":
                    time.sleep(0.5)  # frames and the storm meet an active node
            cycles_done.append(1)

    threads = [run(frames), run(state_poller()), run(keyframe_caller()), run(param_caller())]
    threads += [run(prompts_caller()) for _ in range(PROMPT_THREADS)]
    t0 = time.monotonic()
    try:
        lifecycle()
    finally:
        stop.set()
        for t in threads:
            t.join(ANSWER_BOUND_S + 5)
        executor.remove_node(node)
        node.close(timeout=3.0)
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
    took = time.monotonic() - t0
    report = {k: dict(v) for k, v in stats.items()}
    print(f"{len(cycles_done)} cycles in {took:.1f} s: {report}")
    assert not errors, errors
    assert len(cycles_done) == CYCLES
    for srv in ("get_state", "change_state", "set_prompts", "keyframe", "set_parameters"):
        s = stats[srv]
        assert s["sent"] > 0 and s["lost"] == 0 and s["answered"] == s["sent"], (srv, s)
    # One stall of the whole test process is tolerated: in one of four CI runs one get_state
    # took 0.59 s while keyframe and set_parameters took 0.56 s at the same moment.
    assert stats["get_state"]["slow"] <= 1, stats["get_state"]
    assert stats["get_state"]["max_s"] < STALL_BOUND_S, stats["get_state"]


def test_one_encoding_at_a_time_the_others_answer_at_once(ros, autostart_node):
    """While one set_prompts encodes new names, another with new names is refused at once
    with the reason (text_queue 0: none may wait), one with known names is served, and the
    first says how long it took."""
    # set_prompts_rate_hz 0: three calls within a second, each refused or served for its own
    # reason, not for the rate
    node, ns = autostart_node(text_queue=0, set_prompts_rate_hz=0.0)
    real, entered, release = node.pipeline.encode_text, threading.Event(), threading.Event()

    def slow(names):  # an encoding that lasts until the test lets it end
        entered.set()
        release.wait(30)
        return real(names)

    node.pipeline.encode_text = slow
    client = ros.helper.create_client(SetPrompts, f"{ns}/ovseg/set_prompts")
    assert client.wait_for_service(timeout_sec=20.0)
    first = client.call_async(SetPrompts.Request(prompts=["cat", "zebra crossing"]))
    assert entered.wait(20)
    t0 = time.monotonic()
    busy = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                    SetPrompts.Request(prompts=["cat", "lighthouse"]))
    known = ros.call(SetPrompts, f"{ns}/ovseg/set_prompts",
                     SetPrompts.Request(prompts=["dog", "cat"]))
    state = ros.call(GetState, f"{ns}/ovseg/get_state", GetState.Request())
    waited = time.monotonic() - t0
    release.set()
    done = threading.Event()
    first.add_done_callback(lambda _: done.set())
    assert done.wait(30)
    assert not busy.success and busy.message.startswith(
        "busy: the text encoder is working on 1 new name(s)"), busy.message
    assert "call again in about" in busy.message
    assert known.success and list(known.class_names) == ["dog", "cat"]
    assert state.current_state.label == "active"
    assert waited < 10.0  # none of them waited for the encoding (it lasts 30 s)
    res = first.result()
    assert res.success and re.fullmatch(r"encoded 1 new name\(s\) in \d+\.\d\d s", res.message)
    assert list(res.class_names) == ["cat", "zebra crossing"]
    assert node.get_parameter("prompts").value == ["cat", "zebra crossing"]
    ros.helper.destroy_client(client)


def test_get_state_answers_configuring_during_a_configure(ros, autostart_node, monkeypatch):
    """rclpy serves get_state in the group that runs the transition: it waited for the whole
    configure (seconds of weight loading). Now it says `configuring` at once."""
    import ovseg_ros.node.segment_node as sn

    node, ns = autostart_node(autostart=False)
    real, entered, release = sn.Outputs.create, threading.Event(), threading.Event()

    def slow_create(*args, **kwargs):  # weights that take as long as the test wants
        entered.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(sn.Outputs, "create", slow_create)
    client = ros.helper.create_client(ChangeState, f"{ns}/ovseg/change_state")
    assert client.wait_for_service(timeout_sec=20.0)
    configured = client.call_async(ChangeState.Request(transition=Transition(label="configure")))
    try:
        assert entered.wait(20)
        t0 = time.monotonic()
        state = ros.call(GetState, f"{ns}/ovseg/get_state", GetState.Request(), timeout=10.0)
        took = time.monotonic() - t0
        assert (state.current_state.label, state.current_state.id) == ("configuring", 10)
        assert took < 10.0  # the configure lasts 30 s unless released
    finally:
        release.set()
    done = threading.Event()
    configured.add_done_callback(lambda _: done.set())
    assert done.wait(30) and configured.result().success
    ros.helper.destroy_client(client)
