"""Fixtures for test_reliability_*.py (loaded with `pytest_plugins`): the segmentation node
in-process on the tiny model, as test_node_segment runs it, in namespaces /r<n> so that the
two suites never share topics on one ROS_DOMAIN_ID.

    def test_x(ros, seg_node):
        node, ns = seg_node(prompts=["cat"])   # input <ns>/image, outputs <ns>/ovseg/...
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ros_helpers import RosHarness
from tiny_models import tiny_files

_ns = itertools.count()
BASE = dict(device="cpu", precision="fp32", input_size=0, prompts=["cat", "dog", "car"],
            diagnostics_period=0.25)


@pytest.fixture(scope="module")
def ros(ros_domain_id: int) -> Iterator[RosHarness]:
    with RosHarness(ros_domain_id) as harness:
        yield harness


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[str, Any, Any]:
    return tiny_files(tmp_path_factory.mktemp("tiny"))


class NodeFactory:
    """Makes segmentation nodes in the harness; close() removes them (stops their workers)."""

    def __init__(self, ros: RosHarness, tiny) -> None:
        self.ros, self.tiny, self.made = ros, tiny, []

    def __call__(self, **params: Any) -> tuple[Any, str]:
        from rclpy.parameter import Parameter

        from ovseg_ros.node.segment_node import SegmentNode

        name, clip, heads = self.tiny
        ns = f"/r{next(_ns)}"
        values = dict(BASE, model=name, clip_weights=str(clip), heads=str(heads))
        values.update(params)
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        node = SegmentNode(context=self.ros.context, namespace=ns, parameter_overrides=overrides)
        self.made.append(self.ros.add(node))
        return node, ns

    def close(self) -> None:
        for node in self.made:
            self.ros.remove(node)


@pytest.fixture
def seg_node(ros: RosHarness, tiny) -> Iterator[Callable[..., tuple[Any, str]]]:
    """seg_node(**params) -> (node, namespace); removed (worker stopped) after the test."""
    factory = NodeFactory(ros, tiny)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_seg_node(ros: RosHarness, tiny) -> Iterator[Callable[..., tuple[Any, str]]]:
    """seg_node for module-scoped fixtures: one node shared by many tests."""
    factory = NodeFactory(ros, tiny)
    yield factory
    factory.close()
