"""20 ~/set_prompts calls in a row while frames stream: every published frame used exactly one
submitted vocabulary (names and the ids given for it), and the final state is the last
accepted call. Segmentation.vocabulary_version ties each frame to its label map."""

from __future__ import annotations

import random
import threading
import time

import pytest
from helpers.ros_helpers import image_fields_msg, make_picture, now, wait_for

pytest.importorskip("rclpy")
from sensor_msgs.msg import Image  # noqa: E402

from ovseg_ros.msg import LabelMap, Segmentation  # noqa: E402
from ovseg_ros.node import qos as Q  # noqa: E402
from ovseg_ros.srv import GetPrompts, SetPrompts  # noqa: E402

pytestmark = pytest.mark.slow  # what each call did is asserted, not how long it took

POOL = ["cat", "dog", "car", "bus", "tree", "lamp", "door", "sofa", "cup", "bike", "wall",
        "floor", "road", "sky", "person", "plant", "window", "table", "chair", "truck"]
CALLS = 20  # 2 of them refused; 1 to 2 s each while frames stream on this process's GIL


def vocabularies(seed: int = 7) -> list[list[str]]:
    """Random subsets of POOL; every 9th call is invalid (a duplicate) and must be refused."""
    rng = random.Random(seed)
    out = []
    for k in range(CALLS):
        names = rng.sample(POOL, rng.randint(1, 6))
        out.append(names + [names[0].upper()] if k % 9 == 4 else names)
    return out


def test_service_storm_while_streaming(ros, autostart_node):
    # One start path: the swap under frames is the same once active (test_lifecycle covers
    # the managed path).
    node, ns = autostart_node(set_prompts_rate_hz=0.0)  # every call admitted: what each one does
    segs = ros.collect(Segmentation, f"{ns}/ovseg/segmentation", 100)
    maps = ros.collect(LabelMap, f"{ns}/ovseg/label_map", Q.latched())
    pub = ros.helper.create_publisher(Image, f"{ns}/image", Q.reliable(5))
    stop = threading.Event()

    def stream() -> None:
        pics = [make_picture(24, 32, seed=i) for i in range(3)]
        k = 0
        while not stop.is_set():
            k += 1
            pub.publish(image_fields_msg(pics[k % 3], stamp=now(ros)))
            time.sleep(0.02)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    client = ros.helper.create_client(SetPrompts, f"{ns}/ovseg/set_prompts")
    assert client.wait_for_service(timeout_sec=20.0)
    assert wait_for(lambda: segs.count >= 1)
    # version -> [(name, id)] as answered for it; version 1 is the start-up vocabulary
    by_version = {1: [("cat", 1), ("dog", 2), ("car", 3)]}
    version, last = 1, by_version[1]
    try:
        for names in vocabularies():
            done = threading.Event()
            future = client.call_async(SetPrompts.Request(prompts=names))
            future.add_done_callback(lambda _, done=done: done.set())
            assert done.wait(60.0), "set_prompts did not answer"
            res = future.result()
            if len(set(n.casefold() for n in names)) < len(names):
                assert not res.success and "duplicates" in res.message
                continue
            assert res.success, res.message
            version += 1
            last = by_version[version] = list(zip(res.class_names, res.class_ids, strict=True))
            assert [n for n, _ in last] == names
        assert wait_for(lambda: maps.count and maps.last().version == version)
        t_end = now(ros)
        assert wait_for(lambda: segs.last().header.stamp.sec > t_end.sec + 1, timeout=20.0)
    finally:
        stop.set()
        streamer.join(2.0)
        ros.helper.destroy_client(client)

    accepted = sum(1 for n in vocabularies() if len({x.casefold() for x in n}) == len(n))
    assert version == 1 + accepted and accepted < CALLS  # some refused, the rest counted
    msgs = segs.snapshot()
    seen = {m.vocabulary_version for m in msgs}
    print(f"{len(msgs)} frames over {len(seen)} of {version} vocabularies")
    assert len(seen) >= 3  # frames really overlapped the storm
    for m in msgs:  # never a half-updated vocabulary
        assert [(c.class_name, c.class_id) for c in m.classes] == by_version[
            m.vocabulary_version], m.vocabulary_version
    for lm in maps.snapshot():
        assert [(e.class_name, e.class_id) for e in lm.labels[1:]] == by_version[lm.version]
    got = ros.call(GetPrompts, f"{ns}/ovseg/get_prompts", GetPrompts.Request())
    assert list(zip(got.class_names, got.class_ids, strict=True)) == last
    assert node.get_parameter("prompts").value == [n for n, _ in last]
    final = msgs[-1]
    assert final.vocabulary_version == version
    assert [(c.class_name, c.class_id) for c in final.classes] == last
