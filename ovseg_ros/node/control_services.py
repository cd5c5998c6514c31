"""The node's control services: ~/set_prompts, ~/get_prompts, ~/keyframe, and the answer to
~/get_state. They answer in every state, also while a transition or a frame runs: none holds
an executor thread while the model works (~/set_prompts is a coroutine on the node's service
lane that awaits the text worker for new names, or is refused at once beyond
`set_prompts_rate_hz` or when the text queue is full)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rclpy.callback_groups import CallbackGroup
from std_srvs.srv import Trigger

from ovseg_ros.core.pipeline import FramePipeline
from ovseg_ros.core.vocabulary import VocabularySnapshot
from ovseg_ros.node.service_lane import ServiceLane
from ovseg_ros.srv import GetPrompts, SetPrompts

# lifecycle_msgs/State ids of the labels `SegmentNode.state` takes
STATE_IDS = {"unconfigured": 1, "inactive": 2, "active": 3, "finalized": 4, "configuring": 10,
             "cleaningup": 11, "shuttingdown": 12, "activating": 13, "deactivating": 14,
             "errorprocessing": 15}


def get_state(state: str, res: Any) -> Any:
    """~/get_state from the state the node keeps (never waits for a transition)."""
    res.current_state.id, res.current_state.label = STATE_IDS[state], state
    return res


class ControlledNode(Protocol):
    """What the control services use of the node (SegmentNode)."""

    state: str

    @property
    def pipeline(self) -> FramePipeline | None: ...

    def vocabulary(self) -> VocabularySnapshot: ...

    async def set_prompts(self, prompts: Sequence[str]) -> tuple[bool, str]: ...

    def create_service(self, *args: Any, **kwargs: Any) -> Any: ...


class ControlServices:
    """Creates the services on `node` in `group` (~/set_prompts on `lane`) and answers them."""

    def __init__(self, node: ControlledNode, group: CallbackGroup, lane: ServiceLane) -> None:
        self.node = node
        lane.create_service(SetPrompts, "~/set_prompts", self.set_prompts)
        node.create_service(GetPrompts, "~/get_prompts", self.get_prompts, callback_group=group)
        node.create_service(Trigger, "~/keyframe", self.keyframe, callback_group=group)

    async def set_prompts(self, req: SetPrompts.Request, res: SetPrompts.Response):
        res.success, res.message = await self.node.set_prompts(req.prompts)
        vocab = self.node.vocabulary()  # the previous vocabulary on refusal
        res.class_names, res.class_ids = list(vocab.names), list(vocab.ids)
        return res

    def get_prompts(self, req: GetPrompts.Request, res: GetPrompts.Response):
        vocab = self.node.vocabulary()
        res.class_names, res.class_ids = list(vocab.names), list(vocab.ids)
        res.background = vocab.background
        return res

    def keyframe(self, req: Trigger.Request, res: Trigger.Response):
        node = self.node
        pipeline = node.pipeline
        if pipeline is None:
            res.success, res.message = False, f"the node is {node.state}: configure it first"
        elif not pipeline.request_keyframe():
            res.success, res.message = False, (
                "keyframes are disabled: set keyframes:=true (or a keyframe_every_n / "
                "keyframe_every_s schedule) while the node is unconfigured, then configure")
        else:
            res.success = True
            res.message = "keyframe requested for the next frame" + (
                "" if node.state == "active" else f" (the node is {node.state}: no frames "
                "until it is activated)")
        return res
