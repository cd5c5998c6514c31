"""Fixtures for tests that run the segmentation node in-process (registered in conftest.py):
the node on the tiny seeded model, each in its own namespace /n<k> so tests never share
topics on one ROS_DOMAIN_ID.

    def test_x(ros, seg_node):
        node, ns = seg_node(prompts=["cat"])   # input <ns>/image, outputs <ns>/ovseg/...

`seg_node` runs every test twice: once with autostart (the node configures and activates
itself) and once managed (autostart false, then configure and activate through the standard
~/change_state service, as Nav2's lifecycle manager does). Both must give an active node.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.ros_helpers import RosHarness
from helpers.tiny_models import tiny_files

_ns = itertools.count()
BASE = dict(device="cpu", precision="fp32", backend="torch", input_size=0,
            prompts=["cat", "dog", "car"],
            diagnostics_period=0.25)


@pytest.fixture(scope="module")
def ros(ros_domain_id: int) -> Iterator[RosHarness]:
    with RosHarness(ros_domain_id) as harness:
        yield harness


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[str, Any, Any]:
    return tiny_files(tmp_path_factory.mktemp("tiny"))


def change_state(ros: RosHarness, node_path: str, label: str) -> bool:
    """Request a lifecycle transition by label through <node>/change_state; its success."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    req = ChangeState.Request(transition=Transition(label=label))
    return ros.call(ChangeState, f"{node_path}/change_state", req, timeout=120.0).success


def get_state(ros: RosHarness, node_path: str) -> str:
    from lifecycle_msgs.srv import GetState

    return ros.call(GetState, f"{node_path}/get_state", GetState.Request()).current_state.label


class NodeFactory:
    """Makes segmentation nodes in the harness; close() removes them (stops their workers).

    managed=True: the node starts with autostart false and is configured and activated over
    its lifecycle services. A test that passes autostart=False itself drives the lifecycle.
    """

    def __init__(self, ros: RosHarness, tiny, managed: bool = False) -> None:
        self.ros, self.tiny, self.managed, self.made = ros, tiny, managed, []

    def __call__(self, namespace: str = "", **params: Any) -> tuple[Any, str]:
        from rclpy.parameter import Parameter

        from ovseg_ros.node.segment_node import SegmentNode

        name, clip, heads = self.tiny
        ns = namespace or f"/n{next(_ns)}"
        # A cache folder per test module: names encoded by another module's tests would be
        # read from disk (core/text_store.py), so a "new" name would not be new there.
        values = dict(BASE, model=name, clip_weights=str(clip), heads=str(heads),
                      cache_dir=str(Path(clip).parent / "cache"))
        if self.managed:
            values["autostart"] = False
        values.update(params)
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        node = SegmentNode(context=self.ros.context, namespace=ns, parameter_overrides=overrides)
        if (failed := node.start_failure()) is not None:
            node.destroy_node()
            raise RuntimeError(failed)  # what the process would exit with
        self.made.append(self.ros.add(node))
        if self.managed and "autostart" not in params:
            assert change_state(self.ros, f"{ns}/ovseg", "configure"), node.last_error
            assert change_state(self.ros, f"{ns}/ovseg", "activate")
        return node, ns

    def close(self) -> None:
        for node in self.made:
            self.ros.remove(node)
        if errors := self.ros.take_errors():  # a callback raised during this test
            pytest.fail("a callback raised in the executor:\n" + "\n".join(errors))


@pytest.fixture(params=[False, True], ids=["autostart", "managed"])
def seg_node(request, ros: RosHarness, tiny) -> Iterator[Callable[..., tuple[Any, str]]]:
    """seg_node(**params) -> (node, namespace); removed (worker stopped) after the test."""
    factory = NodeFactory(ros, tiny, managed=request.param)
    yield factory
    factory.close()


@pytest.fixture
def autostart_node(ros: RosHarness, tiny) -> Iterator[Callable[..., tuple[Any, str]]]:
    """seg_node for tests of one start path only (autostart as given in the parameters)."""
    factory = NodeFactory(ros, tiny)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_seg_node(ros: RosHarness, tiny) -> Iterator[Callable[..., tuple[Any, str]]]:
    """seg_node for module-scoped fixtures: one node shared by many tests."""
    factory = NodeFactory(ros, tiny)
    yield factory
    factory.close()
