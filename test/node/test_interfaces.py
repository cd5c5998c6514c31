"""The package's generated interfaces (and the test-only vision_msgs) over real rclpy + DDS.

Needs the colcon install space: run through scripts/test.sh, or after `source scripts/env.sh`.
Missing rclpy or a missing/broken build must fail these tests, so nothing here is skipped.
"""

import rclpy  # noqa: F401  (a missing rclpy is a collection error, not a skip)
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo, VisionClass

from ovseg_ros.msg import ClassStat, LabelEntry, LabelMap, Segmentation
from ovseg_ros.srv import GetPrompts, SetPrompts

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def _roundtrip(make_node, spin_until, msg_type, msg, topic, qos=RELIABLE, latched=False):
    """Publish msg on topic and return what a subscriber in another node receives."""
    pub = make_node("talker").create_publisher(msg_type, topic, qos)
    received = []
    listener = make_node("listener")
    if latched:  # published before anyone listens: only durability can deliver it
        pub.publish(msg)
        listener.create_subscription(msg_type, topic, received.append, qos)
    else:
        listener.create_subscription(msg_type, topic, received.append, qos)
        assert spin_until(lambda: pub.get_subscription_count() >= 1), "no discovery"
        pub.publish(msg)
    assert spin_until(lambda: received), f"nothing received on {topic}"
    assert len(received) == 1
    return received[0]


def test_segmentation_roundtrip(make_node, spin_until):
    msg = Segmentation(
        header=Header(stamp=Time(sec=12, nanosec=345), frame_id="camera_optical"),
        classes=[
            # Values exactly representable in float32, so equality is exact.
            ClassStat(class_id=1, class_name="chair", pixel_fraction=0.25,
                      mean_confidence=0.75, presence=1.0),
            ClassStat(class_id=7, class_name="potted plant", pixel_fraction=0.125,
                      mean_confidence=0.5, presence=0.0625),
        ],
        keyframe=True,
        keyframe_stamp=Time(sec=11, nanosec=999),
        inference_ms=42.5,
        latency_ms=80.25,
        frames_dropped=3,
        vocabulary_version=5,
    )
    got = _roundtrip(make_node, spin_until, Segmentation, msg, "segmentation")
    assert got == msg
    assert [c.class_name for c in got.classes] == ["chair", "potted plant"]
    assert got.classes[1].class_id == 7 and got.classes[1].presence == 0.0625
    assert got.header.frame_id == "camera_optical" and got.keyframe_stamp.nanosec == 999
    assert got.frames_dropped == 3 and got.latency_ms == 80.25
    assert got.vocabulary_version == 5


def test_label_map_latched(make_node, spin_until):
    msg = LabelMap(
        header=Header(frame_id="camera_optical"),
        labels=[
            LabelEntry(class_id=0, class_name="background", r=0, g=0, b=0),
            LabelEntry(class_id=1, class_name="chair", r=230, g=25, b=75),
        ],
        background=True,
        version=4,
    )
    got = _roundtrip(make_node, spin_until, LabelMap, msg, "label_map", LATCHED, latched=True)
    assert got == msg


def test_label_info_test_interface(make_node, spin_until):
    msg = LabelInfo(
        header=Header(frame_id="camera_optical"),
        class_map=[VisionClass(class_id=0, class_name="background"),
                   VisionClass(class_id=3, class_name="person")],
        threshold=0.5,
    )
    got = _roundtrip(make_node, spin_until, LabelInfo, msg, "label_info", LATCHED, latched=True)
    assert got == msg
    assert [(c.class_id, c.class_name) for c in got.class_map] == [(0, "background"),
                                                                     (3, "person")]


def test_prompt_services(make_node, spin_until):
    vocab = {}  # name -> id, ids never reused: the contract the real node keeps

    def set_prompts(request, response):
        names = [p.strip() for p in request.prompts]
        if not names or any(not n for n in names):
            response.success, response.message = False, "empty prompt"
            return response
        for name in names:
            vocab.setdefault(name, len(vocab) + 1)
        response.success, response.message = True, ""
        response.class_names = names
        response.class_ids = [vocab[n] for n in names]
        return response

    def get_prompts(request, response):
        response.class_names = list(vocab)
        response.class_ids = list(vocab.values())
        response.background = False
        return response

    server = make_node("server")
    server.create_service(SetPrompts, "set_prompts", set_prompts)
    server.create_service(GetPrompts, "get_prompts", get_prompts)
    client_node = make_node("client")
    set_client = client_node.create_client(SetPrompts, "set_prompts")
    get_client = client_node.create_client(GetPrompts, "get_prompts")
    assert spin_until(lambda: set_client.service_is_ready() and get_client.service_is_ready())

    def call(client, request):
        future = client.call_async(request)
        assert spin_until(future.done), "no service response"
        return future.result()

    first = call(set_client, SetPrompts.Request(prompts=["chair", "person"]))
    assert first.success and first.message == ""
    assert list(first.class_names) == ["chair", "person"]
    assert list(first.class_ids) == [1, 2]

    second = call(set_client, SetPrompts.Request(prompts=["table", "chair"]))
    assert list(second.class_names) == ["table", "chair"]
    assert list(second.class_ids) == [3, 1]  # "chair" keeps its id

    bad = call(set_client, SetPrompts.Request(prompts=[" "]))
    assert not bad.success and bad.message == "empty prompt"

    current = call(get_client, GetPrompts.Request())
    assert list(current.class_names) == ["chair", "person", "table"]
    assert list(current.class_ids) == [1, 2, 3]
    assert current.background is False


def test_query_and_feature_interfaces(make_node, spin_until):
    """The ~/query, ~/encode_text and ~/features interfaces exist with their fields."""
    from ovseg_ros.msg import FeatureMap, QueryAnswer
    from ovseg_ros.srv import EncodeText, Query

    fm = FeatureMap(height=2, width=3, dim=4, encoding="float16", data=bytes(48),
                    patch_size=16, model="ViT-B-16", weights_id="w", feature_version="v")
    got = _roundtrip(make_node, spin_until, FeatureMap, fm, "features")
    assert got == fm and len(got.data) == 2 * 3 * 4 * 2
    req = Query.Request(phrases=["red mug"], camera="left", threshold=0.5)
    assert list(req.phrases) == ["red mug"]
    res = Query.Response(success=True, answers=[QueryAnswer(phrase="red mug", score=0.5)])
    assert res.answers[0].point_count == 0
    enc = EncodeText.Response(dim=2, embeddings=[1.0, 0.0], logit_scale=100.0)
    assert list(enc.embeddings) == [1.0, 0.0]
