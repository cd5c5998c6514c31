"""Requests whose excess must cost little, over real rclpy: ~/set_prompts beyond
`set_prompts_rate_hz` is refused at once while frames go on, and the service lane
(node/service_lane.py) serves its services from a thread of its own, rests after each request
taken, and lets the middleware drop the oldest requests beyond its depth."""

from __future__ import annotations

import threading

import pytest
from helpers.ros_helpers import stream_frames, wait_for

pytest.importorskip("rclpy")
from rclpy.node import Node  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ovseg_ros.msg import Segmentation  # noqa: E402
from ovseg_ros.node.service_lane import DEPTH, ServiceLane  # noqa: E402
from ovseg_ros.srv import SetPrompts  # noqa: E402

LOOPERS, CALLS = 4, 25  # client threads calling again at once, and their calls each


def test_set_prompts_beyond_its_rate_are_refused_at_once_and_frames_go_on(ros, autostart_node):
    node, ns = autostart_node(set_prompts_rate_hz=2.0)
    base = f"{ns}/ovseg"
    moment = [1000.0]
    node.heavy.prompts_rate.clock = lambda: moment[0]  # the limit's time moves when we say
    segs = ros.collect(Segmentation, f"{base}/segmentation")
    stop = threading.Event()
    streamer = stream_frames(ros, ns, stop)
    answers: list = []
    lock = threading.Lock()

    def looper(k: int) -> None:
        client = ros.helper.create_client(SetPrompts, f"{base}/set_prompts")
        assert client.wait_for_service(timeout_sec=20.0)
        for i in range(CALLS):  # no pause, whatever the answer
            done = threading.Event()
            future = client.call_async(SetPrompts.Request(prompts=["cat", "dog"][::(-1) ** i]))
            future.add_done_callback(lambda _, done=done: done.set())
            if done.wait(30.0):
                with lock:
                    answers.append(future.result())

    try:
        assert wait_for(lambda: segs.count >= 2)
        taken, frames = node.lane.taken, segs.count
        loopers = [threading.Thread(target=looper, args=(k,), daemon=True)
                   for k in range(LOOPERS)]
        for t in loopers:
            t.start()
        for t in loopers:
            t.join(120)
        during = segs.count - frames
        assert len(answers) == LOOPERS * CALLS  # every call answered
        ok = [r for r in answers if r.success]
        refused = [r for r in answers if not r.success]
        assert len(ok) == 2, [r.message for r in answers[:4]]  # one second's burst at 2/s
        for r in refused:
            assert r.message == ("busy: more than set_prompts_rate_hz=2 calls per second "
                                 "(nothing changed); call again in about 0.50 s"), r.message
            # the vocabulary in use: the first one, or one of the two accepted
            assert sorted(r.class_names) in (["car", "cat", "dog"], ["cat", "dog"])
        assert node.heavy.prompts_refused == len(refused)
        assert node.lane.taken - taken == LOOPERS * CALLS  # each one taken once
        assert during >= 1, "no frame was labelled while the clients called"
        assert wait_for(lambda: segs.count >= frames + during + 2)  # and frames go on
        moment[0] += 0.5  # a token again
        res = ros.call(SetPrompts, f"{base}/set_prompts",
                       SetPrompts.Request(prompts=["car", "cat"]))
        assert res.success, res.message
        assert wait_for(lambda: node.vocabulary().names == ("car", "cat"))
    finally:
        stop.set()
        streamer.join(5)


class RecordedLane(ServiceLane):
    """Records the rests it takes instead of taking them."""

    def __init__(self, *args, **kwargs) -> None:
        self.rests: list[float] = []
        super().__init__(*args, **kwargs)

    def _rest(self, seconds: float) -> None:
        self.rests.append(seconds)


@pytest.fixture
def owner(ros):
    node = Node("lane_owner", namespace="/lane", context=ros.context)
    lanes: list[ServiceLane] = []
    yield node, lanes
    for lane in lanes:
        assert lane.close(5.0)
    node.destroy_node()


def test_the_lane_serves_under_the_owners_names_and_rests_after_each_request(ros, owner):
    node, lanes = owner
    lane = RecordedLane(node, lambda: 4.0, suffix="recorded")
    lanes.append(lane)
    threads: list[str] = []

    def sync(req, res):
        threads.append(threading.current_thread().name)
        res.success, res.message = True, "sync"
        return res

    async def coroutine(req, res):  # awaits a worker thread's future on the lane
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            res.message = await lane.wait_for(pool.submit(lambda: "from a worker"))
        res.success = True
        return res

    lane.create_service(Trigger, "~/sync", sync)
    lane.create_service(Trigger, "~/coroutine", coroutine)
    for _ in range(3):
        assert ros.call(Trigger, "/lane/lane_owner/sync", Trigger.Request()).message == "sync"
    res = ros.call(Trigger, "/lane/lane_owner/coroutine", Trigger.Request())
    assert res.success and res.message == "from a worker"
    assert threads == ["ovseg-recorded"] * 3  # the lane's own thread
    assert lane.taken == 4  # the coroutine's resumption was no request
    assert len(lane.rests) == 4 and all(0.0 < r <= 0.25 for r in lane.rests), lane.rests
    names = dict(node.get_service_names_and_types())
    assert "/lane/lane_owner/sync" in names and "/lane/lane_owner/coroutine" in names


def test_the_lane_node_answers_parameter_listings(ros, owner):
    """`ros2 param list` asks every node; a lane without parameter services made it wait 5 s
    and print "Wait for service timed out ... /ovseg_requests"."""
    from rcl_interfaces.srv import ListParameters

    node, lanes = owner
    lanes.append(ServiceLane(node, lambda: 0.0))
    res = ros.call(ListParameters, "/lane/lane_owner_requests/list_parameters",
                   ListParameters.Request())
    assert "use_sim_time" in res.result.names


def test_the_middleware_drops_the_oldest_requests_beyond_the_lanes_depth(ros, owner):
    node, lanes = owner
    lane = ServiceLane(node, lambda: 5.0, suffix="slow")
    lanes.append(lane)

    def answer(req, res):
        res.success = True
        return res

    lane.create_service(Trigger, "~/poke", answer)
    client = ros.helper.create_client(Trigger, "/lane/lane_owner/poke")
    assert client.wait_for_service(timeout_sec=20.0)
    warm = client.call_async(Trigger.Request())  # the server knows this client's reader
    assert wait_for(warm.done, timeout=20.0)
    futures = [client.call_async(Trigger.Request()) for _ in range(3 * DEPTH)]
    # Answered in order: once the newest is answered, every older one kept was answered too.
    assert wait_for(futures[-1].done, timeout=60.0)
    answered = [k for k, f in enumerate(futures) if f.done()]
    assert DEPTH <= len(answered) <= DEPTH + 1, answered  # one may be taken before the rest
    assert answered[-DEPTH:] == list(range(2 * DEPTH, 3 * DEPTH))  # the newest were kept
    for f in futures:
        if not f.done():
            client.remove_pending_request(f)
